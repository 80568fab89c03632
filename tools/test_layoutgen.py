"""Tests of the layout generator that need no CPython build: the spec's consistency, rendering
of probed values into Rust, reading rendered tables back, and the compact `..RELEASE` form.

Run: python3 -m unittest discover -s tools -p 'test_*.py'
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from layoutgen import render, spec  # noqa: E402
from layoutgen.probe import ProbeResult, Source, Value  # noqa: E402


def fake_result(version=(3, 12), shape="release", debug=False, arch="x86_64") -> ProbeResult:
    """Probe values that exist exactly where the spec expects them, numbered in order."""
    values = {}
    for i, f in enumerate(spec.FIELDS):
        exists = ((f.since is None or version >= f.since) and (f.until is None or version < f.until)
                  and (f.shapes is None or shape in f.shapes))
        values[f.name] = Value(8 * (i + 1) if exists else None, "probe" if exists else "")
    members = None
    if debug:
        members = {n: Value(8 * (i + 1), "probe") for i, (n, _) in
                   enumerate(spec.DEBUG_OFFSETS_MEMBERS)}
    source = Source(f"/x/include/python{version[0]}.{version[1]}", f"{version[0]}.{version[1]}.1",
                    version + (1,), None, arch=arch)
    return ProbeResult(source, shape, ["-I/x"], values, members, [])


class SpecTest(unittest.TestCase):
    def test_spec_is_consistent(self):
        spec.check_spec()

    def test_every_group_member_is_unique(self):
        names = [f.name for f in spec.FIELDS]
        self.assertEqual(len(names), len(set(names)))

    def test_a_required_member_without_a_place_in_other_shapes_is_refused(self):
        bad = spec.F("interp.made_up", "ptr", spec.Off("PyInterpreterState", "made_up"))
        spec.FIELDS.append(bad)
        spec.FIELD_BY_NAME[bad.name] = bad
        try:
            with self.assertRaises(spec.GenError):
                spec.check_spec()
        finally:
            spec.FIELDS.remove(bad)
            del spec.FIELD_BY_NAME[bad.name]

    def test_optional_follows_the_version_range(self):
        self.assertFalse(spec.FIELD_BY_NAME["tstate.next"].optional)
        self.assertTrue(spec.FIELD_BY_NAME["tstate.native_thread_id"].optional)
        self.assertEqual(spec.FIELD_BY_NAME["tstate.cframe"].versions(), "3.11 to 3.12")
        self.assertEqual(spec.FIELD_BY_NAME["gil.enabled"].versions(),
                         "3.13+, free-threaded builds")

    def test_behaviours_per_version(self):
        managed = next(b for b in spec.BEHAVIOURS if b.name == "managed_dict")
        self.assertEqual(managed.value((3, 10), "release"), "ManagedDict::None")
        self.assertEqual(managed.value((3, 13), "free-threaded"),
                         "ManagedDict::InlineValues { dict_words_before: 1 }")
        order = next(b for b in spec.BEHAVIOURS if b.name == "insertion_order")
        self.assertEqual(order.value((3, 10), "release"), "InsertionOrder::SharedKeys")
        self.assertEqual(order.value((3, 12), "debug"), "InsertionOrder::BytesBefore")
        self.assertEqual(order.value((3, 14), "free-threaded"), "InsertionOrder::AfterValues")


class RenderTest(unittest.TestCase):
    def test_entry_round_trips_through_parse(self):
        entry = render.render_entry(fake_result(), [])
        text = render.render_version_file([entry])
        path = os.path.join(self.tmp(), "v3_12.rs")
        with open(path, "w") as out:
            out.write(text)
        (back,) = render.parse_existing(path)
        self.assertEqual(render.entry_values(back.text), render.entry_values(entry.text))
        render.check_kept_entry(back, path)

    def test_required_member_missing_is_an_error(self):
        result = fake_result()
        result.values["tstate.next"] = Value(None, "")
        with self.assertRaises(spec.GenError):
            render.render_entry(result, [])

    def test_typed_fields_and_offsets(self):
        text = render.render_entry(fake_result(), []).text
        self.assertRegex(text, r"\n        next: Field::at\(\d+\),")
        self.assertIn("        frame: None,", text)
        self.assertRegex(text, r"\n        ob_sval: \d+,")
        self.assertIn("    managed_dict: ManagedDict::TaggedBefore,", text)

    def test_equal_shapes_are_written_once(self):
        release = render.render_entry(fake_result(), [])
        debug = render.render_entry(fake_result(shape="debug"), [])
        text = render.render_version_file([release, debug])
        self.assertIn(render.SAME_AS_RELEASE, text)
        path = os.path.join(self.tmp(), "v3_12.rs")
        with open(path, "w") as out:
            out.write(text)
        entries = {e.shape: e for e in render.parse_existing(path)}
        self.assertEqual(render.entry_values(entries["debug"].text)[3:],
                         render.entry_values(release.text)[3:])

    def test_each_machine_has_its_own_tables(self):
        # An aarch64 table of the same version and shape is another const, parsed back as such,
        # compacted only against the aarch64 RELEASE, and looked up only for aarch64 cores.
        x86 = render.render_entry(fake_result(), [])
        arm = render.render_entry(fake_result(arch="aarch64"), [])
        arm_debug = render.render_entry(fake_result(shape="debug", arch="aarch64"), [])
        self.assertIn("pub const RELEASE_AARCH64: Layout", arm.text)
        self.assertIn("    arch: Arch::Aarch64,", arm.text)
        self.assertIn("    arch: Arch::X86_64,", x86.text)
        text = render.render_version_file([x86, arm, arm_debug])
        self.assertIn("..RELEASE_AARCH64\n", text)
        path = os.path.join(self.tmp(), "v3_12.rs")
        with open(path, "w") as out:
            out.write(text)
        back = {(e.shape, e.arch): e for e in render.parse_existing(path)}
        self.assertEqual(sorted(back), [("debug", "aarch64"), ("release", "aarch64"),
                                        ("release", "x86_64")])
        self.assertEqual(render.entry_values(back[("debug", "aarch64")].text),
                         render.entry_values(arm_debug.text))
        mod = render.render_mod([x86, arm, arm_debug])
        self.assertIn("(3, 12, Shape::Debug) => Some(&v3_12::DEBUG_AARCH64)", mod)
        self.assertIn("Arch::Aarch64 => lookup_aarch64,", mod)
        lookup = mod[mod.index("pub fn lookup("):mod.index("pub fn lookup_aarch64(")]
        self.assertNotIn("AARCH64", lookup)

    def test_kept_entries_read_as_rustfmt_writes_them(self):
        # rustfmt puts a one-member group on one line and spreads a behaviour's value over
        # several: neither may change the member names a kept table is checked by.
        entry = render.render_entry(fake_result(version=(3, 14)), [])
        names = render.entry_field_names(entry.text)
        one_line = re.sub(r"    int: IntLayout \{\n(?:        //.*\n)?        (ob_ival: [^\n]*),\n    \},",
                          r"    int: IntLayout { \1 },", entry.text)
        spread = re.sub(r"    managed_dict: (\w+::\w+) \{ (\w+: \d+) \},",
                        r"    managed_dict: \1 {\n        \2,\n    },", one_line)
        self.assertIn("    int: IntLayout { ob_ival: None },", spread)
        self.assertIn("        dict_words_before: 3,\n    },", spread)
        self.assertEqual(render.entry_field_names(spread), names)

    def test_headers_say_their_machine(self):
        from layoutgen import probe
        root = self.tmp()
        include = os.path.join(root, "usr", "include")
        os.makedirs(os.path.join(include, "python3.11"))
        os.makedirs(os.path.join(include, "aarch64-linux-gnu", "python3.11"))
        open(os.path.join(include, "aarch64-linux-gnu", "python3.11", "pyconfig.h"), "w").close()
        self.assertEqual(probe.headers_arch(os.path.join(include, "python3.11")), "aarch64")

    def test_kept_entry_of_another_spec_is_refused(self):
        entry = render.render_entry(fake_result(), [])
        entry.text = entry.text.replace("        next: ", "        renamed: ", 1)
        with self.assertRaises(spec.GenError):
            render.check_kept_entry(entry, "v3_12.rs")

    def test_layout_rs_and_debug_map_name_every_member(self):
        layout_rs = render.render_layout_rs()
        for f in spec.FIELDS:
            self.assertIn(f"pub {f.member}: {f.rust_type()},", layout_rs)
        debug_map = render.render_debug_map()
        for name, field in spec.DEBUG_TO_LAYOUT.items():
            self.assertIn(f"slot: &mut layout.{field},", debug_map)
        self.assertIn("pub fn for_other_shape(", debug_map)

    def tmp(self):
        import tempfile
        path = tempfile.mkdtemp(prefix="layoutgen-test.")
        self.addCleanup(lambda: __import__("shutil").rmtree(path, ignore_errors=True))
        return path


if __name__ == "__main__":
    unittest.main()
