# Collects addons/dh_collector/tests/test_frame_cli.py (the module's own tests) under the installed package name.
from trytond.modules.dh_collector.tests.test_frame_cli import *  # noqa: F401,F403
