"""Table tests of the MySQL members' assembly rule (images/mysql/assembly.py).

Run: python3 -m unittest discover -s test/python -v   (from the repository root; no pymysql needed).
test/unit/mysql-supervisor.test.ts runs them as part of the unit tests.
"""
import ast
import os
import sys
import unittest

IMAGE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "images", "mysql")
sys.path.insert(0, IMAGE_DIR)

import assembly  # noqa: E402

M = ["m0", "m1", "m2"]
A = "aaaaaaaa-0000-0000-0000-000000000000"
B = "bbbbbbbb-0000-0000-0000-000000000000"


def gtid_set(text):
    """'uuid:1-5:7,uuid2:1' as a set of (uuid, number): enough of MySQL's format for the subset test."""
    result = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        uuid, *ranges = part.split(":")
        for r in ranges:
            lo, _, hi = r.partition("-")
            result.update((uuid, n) for n in range(int(lo), int(hi or lo) + 1))
    return result


def subset(a, b):
    return gtid_set(a) <= gtid_set(b)


def views(**peers):
    return peers


class Decide(unittest.TestCase):
    # (name, own state, own GTIDs, self, peers, expected action, expected founder, expected stop_first)
    CASES = [
        ("ONLINE: nothing, whatever the peers say", "ONLINE", f"{A}:1-5", "m1", views(m0=None, m2=(True, f"{A}:1-9")), assembly.NOTHING, None, False),
        ("RECOVERING: nothing", "RECOVERING", "", "m2", views(), assembly.NOTHING, None, False),
        ("a peer in a group: join", "OFFLINE", "", "m2", views(m0=(False, ""), m1=(True, f"{A}:1-3")), assembly.JOIN, None, False),
        ("a peer in a group while another is silent: join", "OFFLINE", "", "m0", views(m1=None, m2=(True, f"{A}:1-3")), assembly.JOIN, None, False),
        ("partial view, no group: wait", "OFFLINE", f"{A}:1-9", "m0", views(m1=None, m2=(False, "")), assembly.WAIT, None, False),
        ("a peer missing from the views counts as silent", "OFFLINE", "", "m0", views(m1=(False, "")), assembly.WAIT, None, False),
        ("every peer silent: wait", "OFFLINE", "", "m0", views(m1=None, m2=None), assembly.WAIT, None, False),
        ("new group, empty sets: member 0 bootstraps", "OFFLINE", "", "m0", views(m1=(False, ""), m2=(False, "")), assembly.BOOTSTRAP, "m0", False),
        ("new group, empty sets: member 1 waits for member 0", "OFFLINE", "", "m1", views(m0=(False, ""), m2=(False, "")), assembly.WAIT, "m0", False),
        ("new group, empty sets: member 2 waits for member 0", "OFFLINE", "", "m2", views(m0=(False, ""), m1=(False, "")), assembly.WAIT, "m0", False),
        ("equal non-empty sets: lowest ordinal bootstraps", "OFFLINE", f"{A}:1-7", "m0", views(m1=(False, f"{A}:1-7"), m2=(False, f"{A}:1-7")), assembly.BOOTSTRAP, "m0", False),
        ("equal non-empty sets: the others wait for it", "OFFLINE", f"{A}:1-7", "m2", views(m0=(False, f"{A}:1-7"), m1=(False, f"{A}:1-7")), assembly.WAIT, "m0", False),
        ("one member most advanced: it bootstraps", "OFFLINE", f"{A}:1-9,{B}:1-2", "m1", views(m0=(False, f"{A}:1-7"), m2=(False, f"{A}:1-8,{B}:1")), assembly.BOOTSTRAP, "m1", False),
        ("one member most advanced: member 0 waits for it", "OFFLINE", f"{A}:1-7", "m0", views(m1=(False, f"{A}:1-9,{B}:1-2"), m2=(False, f"{A}:1-8")), assembly.WAIT, "m1", False),
        ("the last member most advanced, the others tied", "OFFLINE", f"{A}:1-4", "m1", views(m0=(False, f"{A}:1-4"), m2=(False, f"{A}:1-6")), assembly.WAIT, "m2", False),
        ("tie between the two most advanced: the lower ordinal of them", "OFFLINE", f"{A}:1-8", "m2", views(m0=(False, f"{A}:1-3"), m1=(False, f"{A}:1-8")), assembly.WAIT, "m1", False),
        ("diverged sets: manual recovery", "OFFLINE", f"{A}:1-5", "m0", views(m1=(False, f"{A}:1-4,{B}:1"), m2=(False, f"{A}:1-3")), assembly.MANUAL_RECOVERY, None, False),
        ("diverged sets seen from another member: manual recovery too", "OFFLINE", f"{A}:1-4,{B}:1", "m1", views(m0=(False, f"{A}:1-5"), m2=(False, "")), assembly.MANUAL_RECOVERY, None, False),
        ("ERROR with a group running: stop, then rejoin", "ERROR", f"{A}:1-5", "m1", views(m0=(True, f"{A}:1-9"), m2=(True, f"{A}:1-9")), assembly.JOIN, None, True),
        ("ERROR and no group anywhere: stop, then the rule (member 0 bootstraps)", "ERROR", f"{A}:1-5", "m0", views(m1=(False, f"{A}:1-5"), m2=(False, f"{A}:1-4")), assembly.BOOTSTRAP, "m0", True),
        ("ERROR with a silent peer: stop, then wait", "ERROR", "", "m2", views(m0=None, m1=(False, "")), assembly.WAIT, None, True),
        # Killed and back before the group expelled it: the group still lists the earlier incarnation.
        ("every peer in the group still lists this member: wait", "OFFLINE", f"{A}:1-5", "m1", views(m0=(True, f"{A}:1-9", ("m1", "m2")), m2=(True, f"{A}:1-9", ("m0", "m1"))), assembly.WAIT, None, False),
        ("ERROR and still listed: stop, then wait", "ERROR", f"{A}:1-5", "m1", views(m0=(True, f"{A}:1-9", ("m1", "m2")), m2=None), assembly.WAIT, None, True),
        ("expelled by the group: join", "OFFLINE", f"{A}:1-5", "m1", views(m0=(True, f"{A}:1-9", ("m2",)), m2=(True, f"{A}:1-9", ("m0",))), assembly.JOIN, None, False),
        # A stale minority may list it forever: one peer of a group that no longer does is enough.
        ("one in-group peer lists it, another no longer does: join", "OFFLINE", "", "m2", views(m0=(True, f"{A}:1-3", ("m1", "m2")), m1=(True, f"{A}:1-3", ("m0",))), assembly.JOIN, None, False),
        ("a peer in no group listing it does not count", "OFFLINE", "", "m2", views(m0=(False, "", ("m2",)), m1=(True, f"{A}:1-3", ("m0",))), assembly.JOIN, None, False),
    ]

    def check(self, state, gtids, me, peers, action, founder, stop_first):
        d = assembly.decide(state, gtids, peers, M, me, subset)
        self.assertEqual((d.action, d.founder, d.stop_first), (action, founder, stop_first), d.reason)
        self.assertTrue(d.reason)

    def test_wait_names_the_silent_peers(self):
        d = assembly.decide("OFFLINE", "", views(m1=None, m2=(False, "")), M, "m0", subset)
        self.assertIn("m1", d.reason)
        self.assertNotIn("m2", d.reason)

    def test_manual_recovery_shows_every_set(self):
        d = assembly.decide("OFFLINE", f"{A}:1-5", views(m1=(False, f"{B}:1"), m2=(False, "")), M, "m0", subset)
        self.assertEqual(d.action, assembly.MANUAL_RECOVERY)
        for text in (f"m0: {A}:1-5", f"m1: {B}:1", "m2: empty"):
            self.assertIn(text, d.reason)

    def test_in_group_never_asks_the_predicate(self):
        def refuse(a, b):
            raise AssertionError("no GTID comparison while in a group")
        self.assertEqual(assembly.decide("ONLINE", "", {}, M, "m0", refuse).action, assembly.NOTHING)

    def test_join_and_wait_do_not_compare_sets(self):
        def refuse(a, b):
            raise AssertionError("no GTID comparison before every member answered")
        self.assertEqual(assembly.decide("OFFLINE", "", views(m1=None, m2=None), M, "m0", refuse).action, assembly.WAIT)
        self.assertEqual(assembly.decide("OFFLINE", "", views(m1=(True, ""), m2=None), M, "m0", refuse).action, assembly.JOIN)

    def test_five_members(self):
        five = [f"m{i}" for i in range(5)]
        peers = {m: (False, f"{A}:1-3") for m in five if m != "m3"}
        peers["m4"] = (False, f"{A}:1-4")
        self.assertEqual(assembly.decide("OFFLINE", f"{A}:1-3", peers, five, "m3", subset).founder, "m4")

    def test_unknown_self_is_a_configuration_error(self):
        with self.assertRaises(ValueError):
            assembly.decide("OFFLINE", "", {}, M, "m9", subset)


class Helpers(unittest.TestCase):
    def test_needs_peer_views(self):
        for state, expected in [("ONLINE", False), ("RECOVERING", False), ("OFFLINE", True), ("ERROR", True), ("", True)]:
            with self.subTest(state):
                self.assertEqual(assembly.needs_peer_views(state), expected)

    def test_group_seen(self):
        self.assertFalse(assembly.group_seen({}))
        self.assertFalse(assembly.group_seen({"m1": None, "m2": (False, f"{A}:1")}))
        self.assertTrue(assembly.group_seen({"m1": None, "m2": (True, "")}))


ALL_ONLINE = {m: "ONLINE" for m in M}


class CreatesSchema(unittest.TestCase):
    # (name, state, role, multi-primary, group view: address -> state, self, expected)
    CASES = [
        ("single-primary: the PRIMARY", "ONLINE", "PRIMARY", False, ALL_ONLINE, "m1", True),
        ("single-primary: the founder alone right after bootstrap", "ONLINE", "PRIMARY", False, {"m0": "ONLINE"}, "m0", True),
        ("single-primary: not a SECONDARY", "ONLINE", "SECONDARY", False, ALL_ONLINE, "m0", False),
        ("single-primary: not while RECOVERING", "RECOVERING", "PRIMARY", False, {"m0": "RECOVERING"}, "m0", False),
        ("single-primary: not OFFLINE", "OFFLINE", "", False, {}, "m0", False),
        ("single-primary: not while another member is RECOVERING (joining)", "ONLINE", "PRIMARY", False, {"m0": "ONLINE", "m1": "RECOVERING"}, "m0", False),
        ("single-primary: an UNREACHABLE member does not hold it back", "ONLINE", "PRIMARY", False, {"m0": "ONLINE", "m1": "ONLINE", "m2": "UNREACHABLE"}, "m0", True),
        ("multi-primary: the lowest ONLINE ordinal", "ONLINE", "PRIMARY", True, ALL_ONLINE, "m0", True),
        ("multi-primary: not when a lower ordinal is ONLINE", "ONLINE", "PRIMARY", True, ALL_ONLINE, "m1", False),
        ("multi-primary: a higher ordinal when the lower ones are not in the group", "ONLINE", "PRIMARY", True, {"m1": "ONLINE", "m2": "ONLINE"}, "m1", True),
        ("multi-primary: a higher ordinal when the lower one is UNREACHABLE", "ONLINE", "PRIMARY", True, {"m0": "UNREACHABLE", "m1": "ONLINE"}, "m1", True),
        ("multi-primary: not the last of two ONLINE", "ONLINE", "PRIMARY", True, {"m1": "ONLINE", "m2": "ONLINE"}, "m2", False),
        ("multi-primary: not while RECOVERING", "RECOVERING", "PRIMARY", True, {"m0": "RECOVERING", "m1": "ONLINE"}, "m0", False),
        ("multi-primary: not while another member is RECOVERING", "ONLINE", "PRIMARY", True, {"m0": "ONLINE", "m2": "RECOVERING"}, "m0", False),
    ]

    def check(self, state, role, multi, group, me, expected):
        self.assertEqual(assembly.creates_schema(state, role, multi, group, M, me), expected)


def add_table_tests(cls):
    """One test per row, named after it, so a failure (and `-v`) names the case."""
    for i, (name, *case) in enumerate(cls.CASES):
        def test(self, case=case):
            self.check(*case)
        test.__doc__ = name
        setattr(cls, f"test_case_{i:02d}", test)


add_table_tests(Decide)
add_table_tests(CreatesSchema)


class Purity(unittest.TestCase):
    def test_imports_nothing_but_the_standard_library(self):
        with open(os.path.join(IMAGE_DIR, "assembly.py")) as f:
            tree = ast.parse(f.read())
        imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        self.assertEqual(imported, {"collections"})



class RebootFromMajority(unittest.TestCase):
    """The configurator's reboot after an outage that left a member behind (only with the stack's decision)."""

    LONG = {"m0": 600, "m1": 600, "m2": 600}
    # (name, views, silent_for, expected action, expected founder)
    CASES = [
        ("a member in a group: nothing to reboot", dict(m0=("ONLINE", f"{A}:1-5"), m1=("OFFLINE", f"{A}:1-5"), m2=None), LONG, assembly.WAIT, None),
        ("a member recovering counts as a group", dict(m0=("RECOVERING", f"{A}:1-5"), m1=("OFFLINE", f"{A}:1-5"), m2=None), LONG, assembly.WAIT, None),
        ("every member answers: the supervisors reboot it themselves", dict(m0=("OFFLINE", f"{A}:1-5"), m1=("OFFLINE", f"{A}:1-5"), m2=("OFFLINE", "")), LONG, assembly.WAIT, None),
        ("a minority answers: wait", dict(m0=("OFFLINE", f"{A}:1-5"), m1=None, m2=None), LONG, assembly.WAIT, None),
        ("the silent member only just went quiet: wait", dict(m0=("OFFLINE", f"{A}:1-5"), m1=("OFFLINE", f"{A}:1-5"), m2=None), {"m2": 10}, assembly.WAIT, None),
        ("majority, the silent one gone for long: the most advanced founds", dict(m0=("OFFLINE", f"{A}:1-5"), m1=("ERROR", f"{A}:1-9"), m2=None), LONG, assembly.REBOOT, "m1"),
        ("majority with equal sets: the lowest ordinal", dict(m0=None, m1=("OFFLINE", f"{A}:1-9"), m2=("OFFLINE", f"{A}:1-9")), LONG, assembly.REBOOT, "m1"),
        ("majority with diverged sets: manual recovery", dict(m0=("OFFLINE", f"{A}:1-5,{B}:1"), m1=("OFFLINE", f"{A}:1-9"), m2=None), LONG, assembly.MANUAL_RECOVERY, None),
    ]

    def test_cases(self):
        for name, views_, silent_for, action, founder in self.CASES:
            with self.subTest(name):
                d = assembly.reboot_from_majority(views_, M, silent_for, 30, subset)
                self.assertEqual(d.action, action, d.reason)
                self.assertEqual(d.founder, founder, d.reason)

    def test_five_members_need_three(self):
        five = ["m0", "m1", "m2", "m3", "m4"]
        two = {"m0": ("OFFLINE", f"{A}:1-3"), "m1": ("OFFLINE", f"{A}:1-3")}
        self.assertEqual(assembly.reboot_from_majority(two, five, self.LONG | {"m3": 600, "m4": 600}, 30, subset).action, assembly.WAIT)
        three = {**two, "m4": ("OFFLINE", f"{A}:1-4")}
        d = assembly.reboot_from_majority(three, five, {"m2": 600, "m3": 600}, 30, subset)
        self.assertEqual((d.action, d.founder), (assembly.REBOOT, "m4"))

if __name__ == "__main__":
    unittest.main()
