"""The static check of solutions that game their tests."""

from __future__ import annotations

import pytest

from selfalign.verify.gaming import find_gaming

GAMED = {
    "reads_own_file": [
        "def f():\n    return open(__file__).read()\n",
        "import sys\ndef f():\n    with open(sys.argv[0]) as fh:\n        return fh.read()\n",
        "import os\nME = os.path.abspath(__file__)\ndef f():\n    return open(ME).read()\n",
        "from pathlib import Path\ndef f():\n    return Path(__file__).resolve().read_text()\n",
        "import inspect, sys\ndef f():\n    return inspect.getsource(sys.modules[__name__])\n",
        "import linecache\ndef f(path, n):\n    return linecache.getline(path, n)\n",
    ],
    "inspects_frames": [
        "import sys\ndef f():\n    return sys._getframe(1).f_locals\n",
        "import inspect as i\ndef f():\n    return i.stack()[1]\n",
        "from inspect import currentframe\ndef f():\n    return currentframe().f_back\n",
        "import traceback\ndef f():\n    return traceback.extract_stack()[-2].line\n",
        "import sys\ndef f():\n    return getattr(sys, '_getframe')(1)\n",
        "import gc\ndef f():\n    return gc.get_referrers(f)\n",
        "def f(g):\n    return g.__code__.co_consts\n",
    ],
    "reexecs_interpreter": [
        "import os, sys\nos.execv(sys.executable, [sys.executable, '-O'])\n",
        "import subprocess, sys\ndef f():\n"
        "    return subprocess.run([sys.executable, '-c', '1'])\n",
        "import os\nos.system('python3 -O prog.py')\n",
    ],
    "patches_builtins": [
        "import builtins\nbuiltins.len = lambda x: 3\n",
        "import builtins as b\nsetattr(b, 'print', None)\n",
        "__builtins__['sorted'] = list\n",
        "class AssertionError(Exception):\n    pass\n",
        "isinstance = lambda *a: True\n",
    ],
    "patches_test_framework": [
        "import unittest\nunittest.TestCase.assertEqual = lambda *a: None\n",
        "from unittest import TestCase\nTestCase.assertTrue = lambda *a: None\n",
        "import unittest\nsetattr(unittest.TestCase, 'fail', lambda *a: None)\n",
    ],
    "always_equal": [
        "class A:\n    def __eq__(self, other):\n        return True\n",
        "class A:\n    def __ne__(self, o):\n        return False\n",
        "class A:\n    def __eq__(self, other):\n        other\n        return 1\n",
        "class A:\n    __eq__ = lambda self, other: True\n",
        "class A:\n    def __hash__(self):\n        return 0\n",
        "class Meta(type):\n    def __instancecheck__(cls, obj):\n        return True\n",
    ],
    "writes_sys_modules": [
        "import sys, types\nsys.modules['math'] = types.ModuleType('math')\n",
        "import sys\nsys.modules.update({'json': None})\n",
        "import sys\nsys.modules[__name__].helper = 1\n",
        "import sys\ndel sys.modules['unittest']\n",
    ],
}

HONEST = [
    # data next to the program, not the program itself
    "import os, json\nHERE = os.path.dirname(__file__)\n"
    "def load():\n    return json.load(open(os.path.join(HERE, 'data.json')))\n",
    "from pathlib import Path\ndef load():\n    return (Path(__file__).parent / 'x').read_text()\n",
    # command-line arguments, not the program name
    "import sys\ndef main():\n    return [int(a) for a in sys.argv[1:]]\n",
    # introspection that is not a frame
    "import inspect\ndef arity(f):\n    return len(inspect.signature(f).parameters)\n",
    # honest equality and hashing
    "class P:\n    def __init__(self, x):\n        self.x = x\n"
    "    def __eq__(self, other):\n        if not isinstance(other, P):\n"
    "            return NotImplemented\n        return self.x == other.x\n"
    "    def __hash__(self):\n        return hash(self.x)\n",
    "class V:\n    def __eq__(self, other):\n        if other is None:\n            return False\n"
    "        return True\n",  # uses its argument, returns different values
    # shadowing input() for speed, running a non-Python command, a local `stack`
    "import sys\ninput = sys.stdin.readline\nstack = []\n",
    "import subprocess\ndef ls():\n    return subprocess.run(['ls'], capture_output=True)\n",
    "def f(frames):\n    return [x.f_name for x in frames]\n",
]


@pytest.mark.parametrize(
    ("family", "code"), [(f, c) for f, codes in GAMED.items() for c in codes]
)
def test_gaming_is_found_with_its_line(family: str, code: str) -> None:
    findings = find_gaming(code)
    assert family in {f.family for f in findings}, (code, findings)
    assert all(f.line >= 1 and f.detail for f in findings)


@pytest.mark.parametrize("code", HONEST)
def test_honest_solutions_are_not_flagged(code: str) -> None:
    assert find_gaming(code) == []


def test_unparseable_solution_has_no_findings() -> None:
    assert find_gaming("def broken(:\n") == []
