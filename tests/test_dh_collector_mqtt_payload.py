from trytond.modules.dh_collector.tests.test_mqtt_payload import *  # noqa
