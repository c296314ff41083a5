# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""The collector's Prometheus metrics (`dh collect --metrics-port N`).

Each :class:`Metrics` has its own registry (several daemons in one test
process do not collide); :meth:`Metrics.serve` exposes it as the Prometheus
text format over HTTP (``GET /metrics``) from a thread."""
import logging

from prometheus_client import (
    CollectorRegistry, Counter, Gauge, Histogram, start_http_server)

log = logging.getLogger('dh.collect.metrics')

PREFIX = 'dh_collector'


class Metrics:

    def __init__(self):
        self.registry = registry = CollectorRegistry()
        self.reads = Counter(f'{PREFIX}_reads', 'Meter reads by result '
            '(ok: the meter gave verified readings in the round, failed: '
            'it did not)', ['result'], registry=registry)
        self.readings = Counter(f'{PREFIX}_readings', 'Register readings '
            'handed to the sink', registry=registry)
        self.errors = Counter(f'{PREFIX}_errors', 'Errors by kind (failed '
            'attempts: timeout, bad_reply, not_connected, connection_lost, '
            'transport, meter_refused; sink, round, database, lease)',
            ['kind'], registry=registry)
        self.rounds = Counter(f'{PREFIX}_rounds', 'Channel rounds finished',
            registry=registry)
        self.round_duration = Gauge(f'{PREFIX}_round_duration_seconds',
            'Duration of the last round of each channel', ['channel'],
            registry=registry)
        self.round_seconds = Histogram(f'{PREFIX}_round_seconds',
            'Round durations (all channels)', registry=registry,
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600))
        self.spool_depth = Gauge(f'{PREFIX}_spool_depth', 'Readings waiting '
            'in the local spool (the database did not take them yet)',
            registry=registry)
        self.commands = Counter(f'{PREFIX}_commands', 'Commands executed, '
            'by the state reported', ['state'], registry=registry)
        self.channels_owned = Gauge(f'{PREFIX}_channels_owned', 'Channels '
            'this collector polls (holds the lease of)', registry=registry)
        self.live_collectors = Gauge(f'{PREFIX}_live_collectors',
            'Collectors with a live heartbeat (1 without sharing)',
            registry=registry)
        self.server = None

    def round(self, channel_id, stats):
        "Count a finished round (engine RoundStats)"
        self.rounds.inc()
        self.reads.labels('ok').inc(stats.meters_answering)
        self.reads.labels('failed').inc(
            max(stats.meters - stats.meters_answering, 0))
        self.readings.inc(stats.readings)
        for kind, count in stats.error_kinds.items():
            self.errors.labels(kind).inc(count)
        if stats.sink_errors:
            self.errors.labels('sink').inc(stats.sink_errors)
        self.round_duration.labels(str(channel_id)).set(stats.duration)
        self.round_seconds.observe(stats.duration)

    def error(self, kind):
        self.errors.labels(kind).inc()

    def command(self, state):
        self.commands.labels(state).inc()

    def forget_channel(self, channel_id):
        "The channel is no longer polled here: drop its duration"
        try:
            self.round_duration.remove(str(channel_id))
        except KeyError:
            pass

    def serve(self, port, host='0.0.0.0'):
        """Serve the registry on ``host:port`` (0: a free port); returns
        the port"""
        self.server, _ = start_http_server(port, host,
            registry=self.registry)
        return self.server.server_port

    def close(self):
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
