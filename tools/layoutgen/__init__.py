"""Per-version layout generator: the field spec (spec.py), probing a build's headers (probe.py),
rendering Rust (render.py) and the command line (cli.py). Entry point: tools/gen_layouts.py."""
