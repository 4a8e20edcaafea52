-- Run once by the postgres image when its volume is new (compose.yaml):
-- POSTGRES_DB already created openseats_lex; the second organisation's node
-- gets a database of its own. Both belong to POSTGRES_USER.
CREATE DATABASE openseats_kiwi;
