# Collects addons/dh_collector/tests/test_safety_engine.py (the module's own tests) under the installed package name.
from trytond.modules.dh_collector.tests.test_safety_engine import *  # noqa: F401,F403
