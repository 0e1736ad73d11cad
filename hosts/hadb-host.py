#!/usr/bin/python3
"""Runs one hadb member on an EC2 host, from the document the user data wrote (/etc/hadb-host/host.json).

  hadb-host boot   once, from cloud-init: Docker, data volumes, files (secrets from SSM), image, the unit,
                   then report ready (the instance id in the ready parameter) when the health check passes
  hadb-host run    the systemd unit's ExecStart: `docker run` with the arguments the AWS target rendered
  hadb-host stop   the unit's ExecStop: `docker stop` with the member's grace period

Every wait is bounded; a failed step exits non-zero and cloud-init's log says which.
"""
import json
import os
import subprocess
import sys
import time

DOCUMENT = "/etc/hadb-host/host.json"
UNIT = "/etc/systemd/system/hadb-member.service"


def log(message):
    print(f"hadb-host: {message}", flush=True)


def sh(*argv, input=None, check=True):
    result = subprocess.run(argv, input=input, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])} … exited {result.returncode}: {result.stderr.strip()[-500:]}")
    return result


def retry(what, attempt, seconds, pause=2.0):
    """Calls attempt() until it returns a true value or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            value = attempt()
            if value:
                return value
            error = "not yet"
        except Exception as err:  # noqa: BLE001 - reported below with the step's name
            error = str(err)
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: gave up after {seconds} s ({error})")
        time.sleep(pause)


def ensure_packages():
    missing = [pkg for cmd, pkg in (("docker", "docker.io"), ("aws", "awscli")) if sh("sh", "-c", f"command -v {cmd}", check=False).returncode]
    if missing:
        log(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        retry("apt-get update", lambda: subprocess.run(["apt-get", "update", "-q"], env=env).returncode == 0, 600, 10)
        retry("apt-get install", lambda: subprocess.run(["apt-get", "install", "-y", "-q", *missing], env=env).returncode == 0, 600, 10)
    sh("systemctl", "enable", "--now", "docker")
    retry("docker engine", lambda: sh("docker", "info", check=False).returncode == 0, 120)


def mount_volumes(doc):
    for volume in doc["volumes"]:
        device, directory = volume["device"], volume["directory"]
        os.makedirs(directory, exist_ok=True)
        retry(f"volume {volume['name']} at {device}", lambda: os.path.exists(device), 600, 2)
        if os.path.isdir(device):
            # The stand-in host: a directory stands for the EBS device (a container cannot have block devices).
            options, fstype = "bind", "none"
        else:
            # Format only an empty device: a replaced instance finds its member's data again.
            if sh("blkid", "-o", "value", "-s", "TYPE", device, check=False).stdout.strip() == "":
                log(f"formatting {device}")
                sh("mkfs.ext4", "-q", "-L", volume["name"][:16], device)
            options, fstype = "defaults,nofail,noatime", "ext4"
        with open("/etc/fstab", "a+") as fstab:
            fstab.seek(0)
            if f" {directory} " not in fstab.read():
                fstab.write(f"{device} {directory} {fstype} {options} 0 {0 if fstype == 'none' else 2}\n")
        if sh("mountpoint", "-q", directory, check=False).returncode:
            sh("mount", directory)
        os.chown(directory, doc["uid"], doc["uid"])


def parameter(doc, name):
    out = sh("aws", "ssm", "get-parameter", "--region", doc["region"], "--name", name, "--with-decryption", "--query", "Parameter.Value", "--output", "text")
    # The CLI's text output ends the value with one newline of its own.
    return out.stdout[:-1] if out.stdout.endswith("\n") else out.stdout


def place_files(doc):
    directory = doc["paths"]["filesDir"]
    os.makedirs(directory, mode=0o750, exist_ok=True)
    os.chown(directory, doc["uid"], doc["uid"])
    for f in doc["files"]:
        content = f["content"] if "content" in f else retry(f"parameter {f['parameter']}", lambda f=f: (parameter(doc, f["parameter"]),), 300, 5)[0]
        target = os.path.join(directory, f["name"])
        with open(target + ".new", "w") as out:
            out.write(content)
        os.chmod(target + ".new", int(f["mode"], 8))
        os.chown(target + ".new", doc["uid"], doc["uid"])
        os.replace(target + ".new", target)


def pull_image(doc):
    image = doc["image"]
    registry = image.split("/")[0]

    def present_or_pulled():
        # Present already (a stand-in host has it loaded; a rebooted host kept it), else log in to ECR and pull.
        if sh("docker", "image", "inspect", image, check=False).returncode == 0:
            return True
        if ".dkr.ecr." in registry:
            password = sh("aws", "ecr", "get-login-password", "--region", doc["region"], check=False)
            if password.returncode != 0 or sh("docker", "login", "--username", "AWS", "--password-stdin", registry, input=password.stdout, check=False).returncode != 0:
                return False
        return sh("docker", "pull", "-q", image, check=False).returncode == 0

    retry(f"image {image}", present_or_pulled, 900, 10)


def install_unit(doc):
    grace = int(doc["stopGraceSeconds"])
    with open(UNIT, "w") as unit:
        unit.write(
            "[Unit]\n"
            f"Description=hadb member {doc['member']}\n"
            "Requires=docker.service\nAfter=docker.service network-online.target local-fs.target\n\n"
            "[Service]\n"
            f"ExecStartPre=-/usr/bin/docker rm -f {doc['member']}\n"
            "ExecStart=/usr/local/sbin/hadb-host run\n"
            "ExecStop=/usr/local/sbin/hadb-host stop\n"
            f"TimeoutStopSec={grace + 30}\nRestart=always\nRestartSec=2\n\n"
            "[Install]\nWantedBy=multi-user.target\n"
        )
    sh("systemctl", "daemon-reload")
    sh("systemctl", "enable", "--now", "hadb-member.service")


def instance_id():
    # cloud-init keeps the instance id it booted with: the same on EC2 and on a stand-in host.
    with open("/var/lib/cloud/data/instance-id") as f:
        return f.read().strip()


def report_ready(doc):
    member = doc["member"]
    health = lambda: sh("docker", "inspect", "-f", "{{.State.Health.Status}}", member, check=False).stdout.strip() == "healthy"  # noqa: E731
    retry(f"{member} ready", health, int(doc["readyWithinSeconds"]), 1)
    sh("aws", "ssm", "put-parameter", "--region", doc["region"], "--name", doc["readyParameter"], "--value", instance_id(), "--type", "String", "--overwrite")
    log(f"{member} is ready")


def main(argv):
    with open(DOCUMENT) as f:
        doc = json.load(f)
    command = argv[1] if len(argv) > 1 else ""
    if command == "run":
        os.execv("/usr/bin/docker", ["docker", "run", "--rm", *doc["run"]])
    if command == "stop":
        sh("docker", "stop", "-t", str(doc["stopGraceSeconds"]), doc["member"], check=False)
        return 0
    if command == "boot":
        ensure_packages()
        mount_volumes(doc)
        place_files(doc)
        pull_image(doc)
        install_unit(doc)
        report_ready(doc)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
