# Collects addons/dh_metering/tests/test_archive_import.py (the module's own tests) under the installed package name.
from trytond.modules.dh_metering.tests.test_archive_import import *  # noqa: F401,F403
