#!/usr/bin/env bash
# A fleet of three instances on one PostgreSQL database under wrk load: how long a change made
# through one takes to be served by the others, and whether any proxied request failed meanwhile.
# See bench/cluster.py.   bench/cluster.sh   |   CHANGES=300 bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk psql; do
  command -v $tool >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk postgresql >/dev/null; break; }
done
[ -x .build/release/fulcrum ] || swift build -c release --product fulcrum >/dev/null
exec python3 bench/cluster.py
