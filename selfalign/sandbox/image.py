"""Build the sandbox image (and the bwrap root file system) from sandbox/."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Literal

from .errors import SandboxUnavailable

log = logging.getLogger(__name__)

IMAGE_REPO = "selfalign-sandbox"
BASE_IMAGE = "debian:bookworm-slim"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"
Method = Literal["auto", "dockerfile", "offline"]


def sandbox_dir() -> Path:
    """The sandbox/ folder (Dockerfile, builder, runner)."""
    env = os.environ.get("SELFALIGN_SANDBOX_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "sandbox"
    if (here / "job_runner.py").is_file():
        return here
    raise SandboxUnavailable(
        f"cannot find the sandbox/ folder (looked in {here}); run from a selfalign checkout "
        "or set SELFALIGN_SANDBOX_DIR to its sandbox/ folder"
    )


def runner_path() -> Path:
    return sandbox_dir() / "job_runner.py"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "selfalign" / "sandbox"


def _files(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    )


def sandbox_hash(root: Path | None = None) -> str:
    """Hash of every file under sandbox/: a changed runner means a new image tag."""
    root = root or sandbox_dir()
    h = hashlib.sha256()
    for p in _files(root):
        h.update(str(p.relative_to(root)).encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()


def image_tag(root: Path | None = None) -> str:
    return f"{IMAGE_REPO}:{sandbox_hash(root)[:12]}"


def _docker(
    *args: str, timeout: float = 60, input: bytes | None = None, check: bool = False
) -> subprocess.CompletedProcess[bytes]:
    try:
        cp = subprocess.run(["docker", *args], capture_output=True, timeout=timeout, input=input)
    except FileNotFoundError as e:
        raise SandboxUnavailable(
            "the docker command is not installed: install Docker (or `make setup`), "
            "or pass --backend bwrap"
        ) from e
    if check and cp.returncode != 0:
        raise SandboxUnavailable(
            f"docker {' '.join(args[:2])} failed: {cp.stderr.decode(errors='replace').strip()}"
        )
    return cp


def check_docker() -> str:
    """Server version, or an error that says how to get a daemon."""
    try:
        cp = _docker("info", "--format", "{{.ServerVersion}}", timeout=20)
    except subprocess.TimeoutExpired as e:
        raise SandboxUnavailable(
            "Docker does not answer (docker info timed out): restart it "
            "(`dockerd &`), or pass --backend bwrap"
        ) from e
    out = cp.stdout.decode().strip()
    if cp.returncode != 0 or not out or "error" in out.lower():
        raise SandboxUnavailable(
            "Docker is not running: start it with `dockerd &` (or `make setup`), "
            f"or pass --backend bwrap ({cp.stderr.decode(errors='replace').strip()[:200]})"
        )
    return out


def image_exists(tag: str) -> bool:
    return _docker("image", "inspect", "--format", "{{.Id}}", tag, timeout=30).returncode == 0


def _registry_works() -> bool:
    if image_exists(BASE_IMAGE):
        return True
    try:
        return _docker("pull", BASE_IMAGE, timeout=120).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def rootfs_key(suite: str = DEFAULT_SUITE) -> str:
    script = (sandbox_dir() / "build_rootfs.sh").read_bytes()
    return hashlib.sha256(script + suite.encode()).hexdigest()[:12]


def ensure_rootfs(
    suite: str = DEFAULT_SUITE, mirror: str | None = None, force: bool = False
) -> Path:
    """The debootstrapped root file system, built once and cached.

    Cached under ~/.cache/selfalign/sandbox/rootfs-<hash of the builder>/; it is
    built in a temporary folder and renamed into place, so an interrupted build
    leaves nothing that looks complete.
    """
    target = cache_dir() / f"rootfs-{rootfs_key(suite)}"
    if (target / ".complete").is_file() and not force:
        return target
    if os.geteuid() != 0:
        raise SandboxUnavailable(
            "building the sandbox root file system needs root (debootstrap): run "
            "`sudo selfalign sandbox build`, or build on a machine with a registry"
        )
    if shutil.which("debootstrap") is None and not Path("/usr/sbin/debootstrap").exists():
        raise SandboxUnavailable(
            "debootstrap is not installed: `apt-get install debootstrap` (or `make setup`)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="rootfs-build-", dir=target.parent))
    mirror = mirror or os.environ.get("SELFALIGN_DEBIAN_MIRROR") or DEFAULT_MIRROR
    log.info("debootstrap %s from %s into %s (about a minute)", suite, mirror, tmp)
    cp = subprocess.run(
        ["sh", str(sandbox_dir() / "build_rootfs.sh"), str(tmp / "root"), suite, mirror],
        capture_output=True,
    )
    if cp.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        tail = (
            cp.stderr.decode(errors="replace")[-2000:] or cp.stdout.decode(errors="replace")[-2000:]
        )
        raise SandboxUnavailable(
            f"building the root file system failed (is {mirror} "
            f"reachable? set SELFALIGN_DEBIAN_MIRROR to a mirror):\n{tail}"
        )
    (tmp / "root" / ".complete").write_text("ok\n")
    if target.exists():
        shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp / "root", target)
    shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_offline(tag: str, suite: str, mirror: str | None) -> None:
    rootfs = ensure_rootfs(suite, mirror)
    dest = rootfs / "opt" / "selfalign"
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(runner_path(), dest / "job_runner.py")
    os.chmod(dest / "job_runner.py", 0o644)
    log.info("docker import %s as %s", rootfs, tag)
    tar = subprocess.Popen(
        ["tar", "-C", str(rootfs), "--exclude", "./.complete", "-c", "."], stdout=subprocess.PIPE
    )
    assert tar.stdout is not None
    imp = subprocess.run(
        [
            "docker",
            "import",
            "--change",
            "WORKDIR /work",
            "--change",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8",
            "--change",
            'CMD ["python3", "-I", "/opt/selfalign/job_runner.py"]',
            "--change",
            f"LABEL selfalign.sandbox.hash={tag.split(':', 1)[1]}",
            "-",
            tag,
        ],
        stdin=tar.stdout,
        capture_output=True,
    )
    tar.stdout.close()
    tar.wait()
    if imp.returncode != 0 or tar.returncode != 0:
        raise SandboxUnavailable(f"docker import failed: {imp.stderr.decode(errors='replace')}")


def _build_dockerfile(tag: str) -> None:
    cp = subprocess.run(
        [
            "docker",
            "build",
            "-t",
            tag,
            "--label",
            f"selfalign.sandbox.hash={tag.split(':', 1)[1]}",
            str(sandbox_dir()),
        ],
        capture_output=True,
    )
    if cp.returncode != 0:
        raise SandboxUnavailable(
            "docker build failed:\n" + cp.stderr.decode(errors="replace")[-2000:]
        )


def build_image(
    method: Method = "auto",
    *,
    force: bool = False,
    suite: str = DEFAULT_SUITE,
    mirror: str | None = None,
) -> str:
    """Build the sandbox image unless an image with the current tag exists.

    ``auto`` uses the Dockerfile when the base image can be had from a registry and
    the offline debootstrap path otherwise. Returns the tag.
    """
    check_docker()
    tag = image_tag()
    if not force and image_exists(tag):
        log.info("sandbox image %s is up to date", tag)
        return tag
    if method == "auto":
        method = "dockerfile" if _registry_works() else "offline"
    log.info("building %s (%s)", tag, method)
    if method == "dockerfile":
        _build_dockerfile(tag)
    else:
        _build_offline(tag, suite, mirror)
    return tag


def ensure_image(image: str | None = None) -> str:
    """The image to run: the configured one, or the current build (built if missing)."""
    if image:
        if not image_exists(image):
            raise SandboxUnavailable(
                f"image {image!r} does not exist: build it with "
                "`selfalign sandbox build`, or leave image unset"
            )
        return image
    tag = image_tag()
    if image_exists(tag):
        return tag
    log.warning("sandbox image %s is missing; building it now (selfalign sandbox build)", tag)
    return build_image()
