# Checks every example makes of an agent run twice: sourced after the script defines `fail`.

# check_restart FIRST SECOND: the first run created the wallet, the second restored it with the
# same identity, and both verified their plain and tweaked (child key) signatures.
check_restart() {
  grep -qx 'provisioned: created' <<<"$1" || fail "first run did not create the wallet"
  grep -qx 'provisioned: restored' <<<"$2" || fail "the second run (a restart) did not restore"
  [ "$(grep '^identity: ' <<<"$1")" = "$(grep '^identity: ' <<<"$2")" ] || fail "identity changed"
  for out in "$1" "$2"; do
    grep -qx 'signature verified: true' <<<"$out" || fail "signature not verified"
    grep -qx 'tweaked signature verified: true' <<<"$out" || fail "tweaked signature not verified"
  done
}
