# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"DH metering: areas, meters, readings, usage aggregates, reports and exports."
