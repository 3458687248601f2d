"""What a web process loads: the training stack (scipy, about 23 MB resident) stays out of it.

Workers share the master's pages copy-on-write, but every module imported is memory each
deployment pays for; scipy is needed only where a model is trained (the job worker)."""
import subprocess
import sys

PROBE = """
import sys
from nexus_pyramid import make_app
from tests.conftest import make_settings
make_app(make_settings("sqlite://"), environ={})
print(sorted(m for m in ("scipy", "rq", "implicit") if m in sys.modules))
"""


def test_building_the_web_app_loads_no_training_library():
    ran = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert ran.stdout.strip().splitlines()[-1] == "[]"
