-- One database per service and one for the gateway's identity store (infra/compose.yaml mounts this file into the
-- postgres container's /docker-entrypoint-initdb.d; it runs once, on an empty data volume). Each service creates
-- its tables itself at start-up (alembic migrations).
CREATE DATABASE accounts;
CREATE DATABASE collection;
CREATE DATABASE benefits;
CREATE DATABASE oversight;
CREATE DATABASE gateway;
