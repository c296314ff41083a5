# DH metering: meter collection (protocol codecs, transports, collector, simulator).
