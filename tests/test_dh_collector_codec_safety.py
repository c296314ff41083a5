# Collects addons/dh_collector/tests/test_codec_safety.py (the module's own tests) under the installed package name.
from trytond.modules.dh_collector.tests.test_codec_safety import *  # noqa: F401,F403
