# The Tryton test cases live with their module (Tryton's layout); this shim
# lets pytest collect them while trytond imports the module only once.
from trytond.modules.dh_metering.tests.test_module import *  # noqa: F401,F403
