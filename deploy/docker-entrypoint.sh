#!/bin/sh
# Entry point of the OpenSeats image.
#
# On the first start (no openseats.toml in $OPENSEATS_DATA) it creates the node
# with `openseats init` from OPENSEATS_NODE_ID, OPENSEATS_BASE_URL and
# OPENSEATS_DISPLAY_NAME: the config file, the private key in keys/ and the
# database tables (OPENSEATS_DATABASE_URL, else SQLite in the data dir).
# Later starts, and every further replica sharing the volume, find the file
# and go straight to the command. Start one replica first and the others when
# it is healthy (compose.yaml does), so `init` never runs twice at once.
set -eu

data="${OPENSEATS_DATA:-/data}"
if [ ! -e "$data/openseats.toml" ]; then
    : "${OPENSEATS_NODE_ID:?OPENSEATS_NODE_ID fehlt / is not set (e.g. lex.example.org)}"
    : "${OPENSEATS_BASE_URL:?OPENSEATS_BASE_URL fehlt / is not set (e.g. https://openseats.lex.example.org)}"
    openseats init --data "$data" \
        --node-id "$OPENSEATS_NODE_ID" \
        --url "$OPENSEATS_BASE_URL" \
        --display-name "${OPENSEATS_DISPLAY_NAME:-$OPENSEATS_NODE_ID}" \
        --port "${OPENSEATS_LISTEN_PORT:-8700}"
fi
exec "$@"
