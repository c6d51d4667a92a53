#!/usr/bin/env bash
# The tools the tests run for real, installed from Debian's packages when missing (as root):
#   prometheus      promtool (check and unit-test the alert rules) and the server the monitoring
#                   test starts to evaluate every dashboard and alert expression
#   systemd         systemd-analyze (verify the units, score their exposure)
#   debootstrap     root file systems for the images built locally (Lambda runtime, container image)
#   openjdk-17-jre-headless  DynamoDB Local, when no java is on PATH
# Terraform is not a Debian package: the Terraform tests skip, saying why, where it is missing.
set -euo pipefail

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-tools: need ${missing[*]}; install them (as root: apt-get install -y ${missing[*]})" >&2
  exit 1
fi
echo "ensure-tools: installing ${missing[*]}" >&2
apt-get update -qq
# No service may start here (the tests start their own Prometheus): Debian's policy-rc.d says no.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  # Removed however the install ends: left behind, it would stop every service installed later.
  trap 'rm -f "$policy"' EXIT
  printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
exit 0
