"""`sam build` of template.yaml for this machine's architecture (the template says arm64,
whose wheels cannot load here), with the SAM CLI of `.venv-sam` (make test-deps).

    build = sam_build(Path("/tmp/out"))      # None (with the reason printed) when impossible
    build.layer                               # <out>/ChatLayer/python, what /opt/python holds
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAM_VENV = ROOT / ".venv-sam"
RUNTIME_BOTO3 = SAM_VENV / "lambda-runtime"
MACHINE = {"x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[os.uname().machine]


@dataclass
class Build:
    root: Path
    python: Path

    @property
    def layer(self) -> Path:
        return self.root / "ChatLayer" / "python"

    def function(self, logical_id: str) -> Path:
        return self.root / logical_id


def missing() -> str | None:
    if not (SAM_VENV / "bin" / "sam").exists() or not (SAM_VENV / "bin" / "python3.12").exists():
        return "no .venv-sam with aws-sam-cli (make test-deps)"
    if not (RUNTIME_BOTO3 / "boto3").is_dir():
        return "no runtime boto3 in .venv-sam/lambda-runtime (make test-deps)"
    return None


def sam_build(out: Path) -> Build:
    out.mkdir(parents=True, exist_ok=True)
    template = out / "template.yaml"
    template.write_text((ROOT / "template.yaml").read_text().replace("arm64", MACHINE))
    python = SAM_VENV / "bin" / "python3.12"
    environment = {
        **os.environ,
        "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",  # python3.12 for the build
        "LAYER_ARCH": "x86_64" if MACHINE == "x86_64" else "aarch64",
        "SAM_CLI_TELEMETRY": "0",
    }
    result = subprocess.run(
        [str(SAM_VENV / "bin" / "sam"), "build", "--template-file", str(template),
         "--base-dir", str(ROOT), "--build-dir", str(out / "build")],
        env=environment, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"sam build failed:\n{result.stdout}\n{result.stderr}")
    return Build(out / "build", python)


def build_layer(out: Path, arch: str = "aarch64") -> Path:
    """Only the layer, for the template's own architecture (arm64 → aarch64): what deploys.
    Cross-architecture is fine here: the Makefile fetches the platform's wheels."""
    python = SAM_VENV / "bin" / "python3.12"
    result = subprocess.run(
        ["make", "-s", "build-ChatLayer"],
        cwd=ROOT / "layers" / "chat",
        env={
            **os.environ,
            "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",
            "ARTIFACTS_DIR": str(out),
            "LAYER_ARCH": arch,
        },
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"the layer build failed:\n{result.stdout}\n{result.stderr}")
    return out / "python"
