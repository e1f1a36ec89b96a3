-- Cluster mode (`cluster.node_id` set): what the nodes behind Kamailio share besides the call
-- rows. PostgreSQL only: a one-process hotline on SQLite never reads these tables (the SQLite
-- 0003 is a placeholder that keeps the numbering in step). Times are the database's clock
-- (`now()`), so the nodes' own clocks never decide who is alive.

-- One row per node that ever ran. A node renews `heartbeat_at` once a second; one whose
-- heartbeat is older than `cluster.lease_secs` is dead. `started_at` (unix ms, database clock)
-- tells one run from the next.
CREATE TABLE cluster_nodes (
    node_id      TEXT PRIMARY KEY,
    started_at   BIGINT NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);

-- A surviving node adopted the unfinished recordings of `node_id`'s run that started at
-- `started_at` (repaired, hashed, entered in the store). One row per dead run: the claim, by
-- `adopted_by`'s run `adopter_run`; `done_at` once finished. A claim whose adopter died before
-- it was done may be taken over by another survivor.
CREATE TABLE cluster_adoptions (
    node_id     TEXT NOT NULL,
    started_at  BIGINT NOT NULL,
    adopted_by  TEXT NOT NULL,
    adopter_run BIGINT NOT NULL,
    adopted_at  TIMESTAMPTZ NOT NULL,
    done_at     TIMESTAMPTZ,
    recordings  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (node_id, started_at)
);

-- The operator queue's inputs, in order: every QueueHandle call of every node (enqueue, cancel,
-- status, registration, offer results...). The leader applies them to the one OperatorQueue.
CREATE TABLE queue_log (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    node_id TEXT NOT NULL,
    input   JSONB NOT NULL
);

-- The queue leader's state after it applied `applied_seq` (one row): a checkpoint of the
-- OperatorQueue, which node holds each queued call, and who leads. A new leader starts from it.
CREATE TABLE queue_leader (
    id          SMALLINT PRIMARY KEY CHECK (id = 1),
    node_id     TEXT NOT NULL,
    applied_seq BIGINT NOT NULL,
    state       JSONB NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);

-- What the leader told each node about its calls (offers, positions, connections...), in order;
-- written in the same transaction as the checkpoint, so an event is told once or its step is
-- redone by the next leader. Nodes read their own rows after the last seq they saw.
CREATE TABLE queue_outbox (
    seq     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    node_id TEXT NOT NULL,
    call_id TEXT NOT NULL,
    event   JSONB NOT NULL
);
CREATE INDEX queue_outbox_node ON queue_outbox (node_id, seq);

-- Operators' softphone bindings, as each node's registrar holds them: a softphone registers on
-- one node (through Kamailio, with Path) and any node can ring it.
CREATE TABLE sip_bindings (
    operator   TEXT NOT NULL,
    node_id    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    -- Path header URIs (RFC 3327), first hop first: the Route set of requests to the contact.
    path       JSONB NOT NULL DEFAULT '[]',
    q          REAL,
    expires_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (operator, node_id, contact)
);
CREATE INDEX sip_bindings_expires ON sip_bindings (expires_at);
