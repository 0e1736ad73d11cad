"""Tests of hosts/hadb-host.py, the program an EC2 host's user data runs, with its commands scripted: the steps a
boot takes, in order, and what each writes. Run: python3 -m unittest discover -s test/python -v
"""
import importlib.util
import json
import os
import subprocess
import tempfile
import unittest
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("hadb_host", os.path.join(ROOT, "hosts", "hadb-host.py"))
host = importlib.util.module_from_spec(spec)
spec.loader.exec_module(host)


def ran(stdout="", code=0):
    return subprocess.CompletedProcess([], code, stdout, "")


class HostTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp()
        self.calls = []
        self.answers = {}
        patch = mock.patch.object(host, "sh", side_effect=self.sh)
        patch.start()
        self.addCleanup(patch.stop)
        chown = mock.patch.object(host.os, "chown")
        chown.start()
        self.addCleanup(chown.stop)
        self.doc = {
            "member": "pg-0",
            "region": "eu-west-1",
            "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/hadb-prod/postgres@sha256:abc",
            "uid": 999,
            "paths": {"filesDir": os.path.join(self.dir, "files"), "volumesDir": os.path.join(self.dir, "volumes")},
            "volumes": [],
            "files": [
                {"name": "bootstrap.yml", "mode": "0644", "content": "bootstrap: {}\n"},
                {"name": "patroni.yml", "mode": "0600", "parameter": "/hadb-prod/pg/pg-0/patroni.yml", "version": 3},
            ],
            "run": ["--name", "pg-0", "img"],
            "stopGraceSeconds": 30,
            "readyWithinSeconds": 5,
            "readyParameter": "/hadb-prod/pg/ready/pg-0",
        }

    def sh(self, *argv, input=None, check=True):
        self.calls.append(argv)
        for prefix, answer in self.answers.items():
            if " ".join(argv).startswith(prefix):
                return answer(argv) if callable(answer) else answer
        return ran()

    def test_a_parameter_loses_only_the_newline_the_cli_adds(self):
        self.answers["aws ssm get-parameter"] = ran("line one\nline two\n\n")
        self.assertEqual(host.parameter(self.doc, "/p"), "line one\nline two\n")
        self.assertIn(("aws", "ssm", "get-parameter", "--region", "eu-west-1", "--name", "/p", "--with-decryption", "--query", "Parameter.Value", "--output", "text"), self.calls)

    def test_files_are_written_with_their_modes_inline_or_from_ssm(self):
        self.answers["aws ssm get-parameter"] = ran("scope: pg\n\n")
        host.place_files(self.doc)
        files = self.doc["paths"]["filesDir"]
        with open(os.path.join(files, "patroni.yml")) as f:
            self.assertEqual(f.read(), "scope: pg\n")
        with open(os.path.join(files, "bootstrap.yml")) as f:
            self.assertEqual(f.read(), "bootstrap: {}\n")
        self.assertEqual(oct(os.stat(os.path.join(files, "patroni.yml")).st_mode & 0o777), "0o600")
        self.assertEqual(oct(os.stat(os.path.join(files, "bootstrap.yml")).st_mode & 0o777), "0o644")

    def test_an_empty_device_is_formatted_and_a_formatted_one_is_not(self):
        device = os.path.join(self.dir, "nvme-vol0")
        open(device, "w").close()
        fstab = os.path.join(self.dir, "fstab")
        self.doc["volumes"] = [{"name": "data", "device": device, "directory": os.path.join(self.dir, "data")}]
        real_open = open
        with mock.patch.object(host, "open", create=True, side_effect=lambda p, *a, **k: real_open(fstab if p == "/etc/fstab" else p, *a, **k)):
            self.answers["blkid"] = ran("")
            self.answers["mountpoint"] = ran(code=1)
            host.mount_volumes(self.doc)
            self.assertTrue(any(c[0] == "mkfs.ext4" for c in self.calls))
            self.calls.clear()
            self.answers["blkid"] = ran("ext4\n")
            self.answers["mountpoint"] = ran(code=0)
            host.mount_volumes(self.doc)
            self.assertFalse(any(c[0] in ("mkfs.ext4", "mount") for c in self.calls))
        with open(fstab) as f:
            lines = f.read().splitlines()
        self.assertEqual(lines, [f"{device} {self.dir}/data ext4 defaults,nofail,noatime 0 2"])

    def test_the_stand_in_directory_is_bind_mounted_never_formatted(self):
        device = os.path.join(self.dir, "by-id-dir")
        os.mkdir(device)
        fstab = os.path.join(self.dir, "fstab")
        self.doc["volumes"] = [{"name": "data", "device": device, "directory": os.path.join(self.dir, "data")}]
        real_open = open
        with mock.patch.object(host, "open", create=True, side_effect=lambda p, *a, **k: real_open(fstab if p == "/etc/fstab" else p, *a, **k)):
            self.answers["mountpoint"] = ran(code=1)
            host.mount_volumes(self.doc)
        self.assertFalse(any(c[0] in ("mkfs.ext4", "blkid") for c in self.calls))
        self.assertIn(("mount", f"{self.dir}/data"), self.calls)
        with real_open(fstab) as f:
            self.assertEqual(f.read(), f"{device} {self.dir}/data none bind 0 0\n")

    def test_an_ecr_image_is_pulled_after_logging_in_with_the_instance_role(self):
        present = {"yes": False}
        self.answers["docker image inspect"] = lambda argv: ran(code=0 if present["yes"] else 1)
        self.answers["aws ecr get-login-password"] = ran("token")
        self.answers["docker login"] = ran()
        self.answers["docker pull"] = lambda argv: present.update(yes=True) or ran()
        host.pull_image(self.doc)
        commands = [" ".join(c[:3]) for c in self.calls]
        self.assertLess(commands.index("aws ecr get-login-password"), commands.index("docker pull -q"))
        self.assertIn(("docker", "login", "--username", "AWS", "--password-stdin", "123456789012.dkr.ecr.eu-west-1.amazonaws.com"), self.calls)

    def test_ready_is_reported_with_the_instance_id_only_once_healthy(self):
        health = iter(["starting", "starting", "healthy"])
        self.answers["docker inspect"] = lambda argv: ran(next(health) + "\n")
        real_open = open
        instance_file = os.path.join(self.dir, "instance-id")
        with real_open(instance_file, "w") as f:
            f.write("i-0123456789abcdef0\n")
        with mock.patch.object(host, "open", create=True, side_effect=lambda p, *a, **k: real_open(instance_file if p == "/var/lib/cloud/data/instance-id" else p, *a, **k)), mock.patch.object(host.time, "sleep"):
            host.report_ready(self.doc)
        put = [c for c in self.calls if c[:3] == ("aws", "ssm", "put-parameter")]
        self.assertEqual(put, [("aws", "ssm", "put-parameter", "--region", "eu-west-1", "--name", "/hadb-prod/pg/ready/pg-0", "--value", "i-0123456789abcdef0", "--type", "String", "--overwrite")])
        self.assertEqual(sum(1 for c in self.calls if c[:2] == ("docker", "inspect")), 3)

    def test_a_member_that_never_becomes_healthy_is_not_reported_ready(self):
        self.answers["docker inspect"] = ran("unhealthy\n")
        self.doc["readyWithinSeconds"] = 0
        with mock.patch.object(host.time, "sleep"):
            with self.assertRaisesRegex(RuntimeError, "pg-0 ready: gave up"):
                host.report_ready(self.doc)
        self.assertFalse(any(c[:3] == ("aws", "ssm", "put-parameter") for c in self.calls))

    def test_the_unit_runs_the_member_through_hadb_host_and_stops_it_with_its_grace(self):
        unit = os.path.join(self.dir, "hadb-member.service")
        with mock.patch.object(host, "UNIT", unit):
            host.install_unit(self.doc)
        with open(unit) as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/local/sbin/hadb-host run\n", text)
        self.assertIn("ExecStop=/usr/local/sbin/hadb-host stop\n", text)
        self.assertIn("TimeoutStopSec=60\n", text)
        self.assertIn(("systemctl", "enable", "--now", "hadb-member.service"), self.calls)
        with mock.patch.object(host.os, "execv") as execv, mock.patch.object(host, "DOCUMENT", os.path.join(self.dir, "host.json")):
            with open(host.DOCUMENT, "w") as f:
                json.dump(self.doc, f)
            host.main(["hadb-host", "run"])
        execv.assert_called_once_with("/usr/bin/docker", ["docker", "run", "--rm", "--name", "pg-0", "img"])


if __name__ == "__main__":
    unittest.main()
