"""With an azureml-core distribution really installed (pip, into a temporary virtual environment)
the compatibility layer refuses, says why and what to do; the same venv without it enables."""
from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILES = {"azureml/__init__.py": "", "azureml/core/__init__.py": "REAL_SDK = True\n",
         "azureml_core-1.57.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: azureml-core\nVersion: 1.57.0\n",
         "azureml_core-1.57.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: mltrain-test\n"
                                                "Root-Is-Purelib: true\nTag: py3-none-any\n"}
PROBE = ("import mltrain_desktop.compat as c\ntry:\n    c.enable()\n    print('ENABLED')\n"
         "except Exception as e:\n    print(type(e).__name__, e)\n")


def _wheel(folder: Path) -> Path:
    def digest(text: str) -> str:
        return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record = "".join(f"{n},{digest(c)},{len(c.encode())}\n" for n, c in FILES.items())
    path = folder / "azureml_core-1.57.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, content in FILES.items():
            z.writestr(name, content)
        z.writestr("azureml_core-1.57.0.dist-info/RECORD", record + "azureml_core-1.57.0.dist-info/RECORD,,\n")
    return path


def _python(venv: Path) -> str:
    return str(venv / "bin" / "python")


def test_a_pip_installed_azureml_core_in_a_venv_makes_enable_refuse(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "mltrain-src.pth").write_text(str(REPO) + "\n")  # this checkout, as an editable install would
    before = subprocess.run([_python(venv), "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert before.stdout.strip() == "ENABLED", before.stderr
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--target", str(site),
                    str(_wheel(tmp_path))], check=True, timeout=120)
    after = subprocess.run([_python(venv), "-c", PROBE], capture_output=True, text=True, timeout=60)
    out = after.stdout.strip()
    assert out.startswith("CompatRefused"), out + after.stderr
    assert "azureml-core 1.57.0 is installed" in out and "pip uninstall azureml-core" in out
