# Sourced by the cross-generator training recipes (scripts/train_cross_*_recipe.sh).
# link SET PREFIX EVERY LIMIT MIX: every EVERY-th of the first LIMIT frames of SET into MIX, names prefixed
link() {
  local i=0 name
  mkdir -p "$5/images" "$5/masks"
  for name in $(ls "$1/images" | sort | head -n "$4"); do
    if [ $((i % $3)) -eq 0 ]; then
      ln -sf "$1/images/$name" "$5/images/$2_$name"; ln -sf "$1/masks/$name" "$5/masks/$2_$name"
    fi
    i=$((i + 1))
  done
}
