"""Hardware drivers: the AK09940A chip (registers and the one flag-to-status decoding), the
magnetometer array over I2C or a microcontroller's serial line, and recorded or live imagery.

They stand on guidewire.contracts and never import the digital twin (guidewire.twin), so
none of them pulls in magpylib, OpenCV or torch when it is imported (test_contracts checks).
"""
