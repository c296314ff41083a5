# This file is part of DH metering.  Licensed under the GPL-3.0-or-later.
"""Several `dh collect` processes sharing the channels of one PostgreSQL
database: leases with an expiry, kept by the database clock.

Two SQL-owned tables (created by the module update, PostgreSQL only):

* ``dh_collector_member``: one row per live collector, its heartbeat
  (``expires`` = database time of the last heartbeat + lease).
* ``dh_channel_lease``: which collector polls which channel, until when.

A collector polls a channel only while it holds the channel's lease.  Every
``lease / 3`` seconds it renews its leases and its heartbeat; the renewal
sent at local monotonic time ``t`` makes the collector trust the lease
until ``t + lease - guard`` only (the database sets the expiry from its
own clock, later than ``t``), so a collector whose renewals fail stops
polling before anybody else can take the channel over.  Taking a channel
is one atomic ``INSERT … ON CONFLICT … DO UPDATE … WHERE expires < now()``:
no two collectors can hold a lease at once.

Fair share: every collector aims for ``ceil(shared channels / live
collectors)``, claims free or expired channels up to it and releases its
extras at a round boundary (the channel finishes its round first).
Channels that only one collector can poll — a DTU connected to this
collector, a serial port present on this host — are "pinned": claimed
whenever possible, outside the fair share."""
import math
import os
import socket
import time
import uuid

MEMBERS = 'dh_collector_member'
LEASES = 'dh_channel_lease'


def create_tables(cursor):
    "Create the two tables (PostgreSQL; called by dh.channel's register)"
    cursor.execute(
        f'CREATE TABLE IF NOT EXISTS {MEMBERS} ('
        'name VARCHAR PRIMARY KEY, host VARCHAR, pid INTEGER, '
        'started TIMESTAMPTZ NOT NULL DEFAULT now(), '
        'expires TIMESTAMPTZ NOT NULL)')
    cursor.execute(
        f'CREATE TABLE IF NOT EXISTS {LEASES} ('
        'channel INTEGER PRIMARY KEY, owner VARCHAR NOT NULL, '
        'expires TIMESTAMPTZ NOT NULL)')


def fair_share(channels, live):
    return math.ceil(channels / max(live, 1))


class LeaseStore:
    """The SQL of the leases, on one autocommit READ COMMITTED connection
    of the Tryton pool per call (synchronous: call from a thread)."""

    def __init__(self, database_name):
        self.database_name = database_name

    def _connection(self):
        from psycopg import IsolationLevel
        from trytond import backend
        database = backend.Database(self.database_name).connect()
        conn = database.get_connection(autocommit=True)
        conn.isolation_level = IsolationLevel.READ_COMMITTED
        return database, conn

    def run(self, func):
        database, conn = self._connection()
        try:
            with conn.cursor() as cursor:
                return func(cursor)
        finally:
            database.put_connection(conn)

    @staticmethod
    def heartbeat(cursor, name, lease):
        cursor.execute(
            f'INSERT INTO {MEMBERS} AS m (name, host, pid, expires) '
            "VALUES (%s, %s, %s, now() + %s * interval '1 second') "
            'ON CONFLICT (name) DO UPDATE SET expires = EXCLUDED.expires',
            (name, socket.gethostname(), os.getpid(), lease))
        # members gone for long are forgotten
        cursor.execute(f'DELETE FROM {MEMBERS} WHERE expires < now() - '
            "%s * interval '1 second'", (10 * lease,))
        cursor.execute(f'SELECT count(*) FROM {MEMBERS} '
            'WHERE expires > now()')
        return cursor.fetchone()[0]

    @staticmethod
    def renew(cursor, name, lease, channels):
        "The channels still ours (lease renewed)"
        cursor.execute(
            f'UPDATE {LEASES} SET expires = now() + %s * '
            "interval '1 second' WHERE owner = %s AND channel = ANY(%s) "
            'RETURNING channel', (lease, name, list(channels)))
        return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def claim(cursor, name, lease, candidates, limit):
        "Take up to ``limit`` of the free or expired ``candidates``"
        if limit <= 0 or not candidates:
            return set()
        cursor.execute(
            'SELECT c.id FROM unnest(%s::integer[]) AS c(id) '
            f'LEFT JOIN {LEASES} AS l ON l.channel = c.id '
            'WHERE l.channel IS NULL OR l.expires < now() '
            'ORDER BY random() LIMIT %s', (list(candidates), limit))
        free = [row[0] for row in cursor.fetchall()]
        if not free:
            return set()
        cursor.execute(
            f'INSERT INTO {LEASES} AS l (channel, owner, expires) '
            "SELECT c, %s, now() + %s * interval '1 second' "
            'FROM unnest(%s::integer[]) AS c '
            'ON CONFLICT (channel) DO UPDATE '
            'SET owner = EXCLUDED.owner, expires = EXCLUDED.expires '
            'WHERE l.expires < now() RETURNING channel',
            (name, lease, free))
        return {row[0] for row in cursor.fetchall()}

    @staticmethod
    def release(cursor, name, channels):
        cursor.execute(f'DELETE FROM {LEASES} WHERE owner = %s '
            'AND channel = ANY(%s)', (name, list(channels)))

    @staticmethod
    def leave(cursor, name):
        cursor.execute(f'DELETE FROM {LEASES} WHERE owner = %s', (name,))
        cursor.execute(f'DELETE FROM {MEMBERS} WHERE name = %s', (name,))

    @staticmethod
    def owners(cursor):
        "{channel: owner} of the unexpired leases (for tests and tools)"
        cursor.execute(f'SELECT channel, owner FROM {LEASES} '
            'WHERE expires > now()')
        return dict(cursor.fetchall())


class Sharing:
    """One collector's side of the leases.  The daemon asks
    :meth:`cycle` every :attr:`renew_interval` seconds (from a thread, it
    does SQL) and polls exactly the channels :meth:`valid` says it holds.

    ``lease``: seconds a lease lasts without renewal; a dead collector's
    channels are taken over within ``lease + renew_interval``."""

    def __init__(self, store, lease=15.0, name=None, clock=time.monotonic):
        if lease <= 0:
            raise ValueError('the lease must be positive')
        self.store = store
        self.lease = float(lease)
        self.renew_interval = self.lease / 3
        # stop polling this long before the database could let the
        # channel go: time to cancel the round and close the link
        self.guard = min(self.lease / 5, 2.0)
        self.name = name or (f'{socket.gethostname()}:{os.getpid()}:'
            f'{uuid.uuid4().hex[:6]}')
        self.clock = clock
        self.deadline = {}      # channel -> local monotonic deadline
        self.live = 1
        self.target = 0

    def valid(self, channel_id, now=None):
        "Do we hold this channel's lease (with the safety guard)?"
        now = self.clock() if now is None else now
        return self.deadline.get(channel_id, 0) > now

    @property
    def owned(self):
        now = self.clock()
        return {c for c, d in self.deadline.items() if d > now}

    def cycle(self, shared, pinned=(), releasing=()):
        """One heartbeat: renew, then claim up to the fair share of
        ``shared`` (plus every ``pinned`` channel).  Returns the set of
        channels to release gracefully: extras above the fair share, and
        held channels neither shared nor pinned (a DTU no longer connected
        here, a channel removed from the plan).  ``releasing``: channels
        already being released (not counted in the share).
        Raises what the database raises (the deadlines then run out)."""
        sent = self.clock()
        held = set(self.deadline)

        def work(cursor):
            live = self.store.heartbeat(cursor, self.name, self.lease)
            kept = self.store.renew(cursor, self.name, self.lease, held) \
                if held else set()
            shared_set = set(shared)
            target = fair_share(len(shared_set), live)
            mine = kept & shared_set - set(releasing)
            gained = set()
            pinned_free = set(pinned) - kept
            if pinned_free:
                gained |= self.store.claim(cursor, self.name, self.lease,
                    pinned_free, len(pinned_free))
            if len(mine) < target:
                gained |= self.store.claim(cursor, self.name, self.lease,
                    shared_set - kept - set(pinned), target - len(mine))
            return live, target, kept, gained
        live, target, kept, gained = self.store.run(work)
        self.live, self.target = live, target
        until = sent + self.lease - self.guard
        for channel in held - kept:
            # taken by another collector, or the channel was removed
            self.deadline.pop(channel, None)
        for channel in kept | gained:
            self.deadline[channel] = until
        shared_set = set(shared)
        mine = sorted((kept | gained) & shared_set - set(releasing))
        extra = max(len(mine) - target, 0)
        # leave the highest ids: deterministic, so the collectors agree
        to_release = set(mine[len(mine) - extra:]) if extra else set()
        gone = (kept | gained) - shared_set - set(pinned)
        return to_release | gone

    def release(self, channels):
        "Give these channels back (after their polling stopped)"
        channels = set(channels)
        for channel in channels:
            self.deadline.pop(channel, None)
        if channels:
            self.store.run(lambda cursor: self.store.release(cursor,
                    self.name, channels))

    def leave(self):
        "Shut down: give every lease back and leave the members"
        self.deadline.clear()
        self.store.run(lambda cursor: self.store.leave(cursor, self.name))
