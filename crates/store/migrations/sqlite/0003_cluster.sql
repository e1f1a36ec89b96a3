-- Cluster tables are PostgreSQL only (see ../postgres/0003_cluster.sql): a cluster node needs a
-- postgres:// database_url. This placeholder keeps the two migration lists in step.
SELECT 1;
