"""Bootstrap pip into ansible-test's virtualenvs with Python's own ensurepip.

ansible-test downloads a get-pip script from its CI file host to bootstrap pip into each sanity
test's virtualenv, and looks for it first in its cache (~/.ansible/test/cache/get_pip_<version>.py).
Where that host cannot be reached (docs/facts.md), `make sanity` puts this file there instead: it
installs pip with ensurepip, then installs exactly what ansible-test asked for (the pinned pip among
it). The sanity tests and their pinned requirements stay ansible-test's own.
"""

import subprocess
import sys

# get-pip's own options, which pip install does not know.
args = [arg for arg in sys.argv[1:] if arg not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
subprocess.check_call([sys.executable, "-m", "pip", "install", "--quiet", *args])
