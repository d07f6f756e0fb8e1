#!/usr/bin/env bash
# The GitHub Action (action.yml) in one script: writes the SSH key (0600) and the known_hosts lines
# for this run into a private directory under $RUNNER_TEMP, masks every secret input, runs `dep` with
# the GitHub output mode and a job summary, and removes the directory whatever happens.
#
# Every input arrives as an INPUT_* environment variable, never interpolated into shell text, and
# goes to `dep` as its own argv element: a value cannot become shell code or an extra option.
set -euo pipefail

fail() {
  local message="${1//%/%25}"
  message="${message//$'\r'/%0D}"
  printf '::error title=deployfile action::%s\n' "${message//$'\n'/%0A}"
  exit 2
}

task="${INPUT_TASK:-deploy}"
workdir="${INPUT_WORKING_DIRECTORY:-.}"
[ -n "${RUNNER_TEMP:-}" ] || fail 'RUNNER_TEMP is not set: this script runs inside a GitHub Actions job.'

# Masks a value line by line (GitHub masks single lines; a key has many). `%` is escaped, as the
# runner unescapes workflow command data.
mask() {
  local line
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    if [ -n "${line//[[:space:]]/}" ]; then printf '::add-mask::%s\n' "${line//%/%25}"; fi
  done <<<"$1"
}

if [ -n "${INPUT_SSH_PRIVATE_KEY:-}" ]; then mask "$INPUT_SSH_PRIVATE_KEY"; fi
if [ -n "${INPUT_SSH_KEY_PASSPHRASE:-}" ]; then mask "$INPUT_SSH_KEY_PASSPHRASE"; fi

# The run's private directory: removed on every way out (success, failure, cancellation).
private="$(mktemp -d "$RUNNER_TEMP/deployfile.XXXXXXXX")"
cleanup() { rm -rf -- "$private"; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
chmod 700 "$private"

# Given to dep through its environment (never argv, which `ps` shows).
if [ -n "${INPUT_SSH_PRIVATE_KEY:-}" ]; then
  (
    umask 077
    # CRLF pasted from Windows breaks the key; the trailing newline is required by OpenSSH's format.
    printf '%s\n' "$INPUT_SSH_PRIVATE_KEY" | tr -d '\r' >"$private/id_key"
  )
  chmod 600 "$private/id_key"
  export DEPLOYFILE_SSH_KEY_FILE="$private/id_key"
fi
if [ -n "${INPUT_KNOWN_HOSTS:-}" ]; then
  printf '%s\n' "$INPUT_KNOWN_HOSTS" | tr -d '\r' >"$private/known_hosts"
  chmod 600 "$private/known_hosts"
  export DEPLOYFILE_SSH_KNOWN_HOSTS="$private/known_hosts"
fi
if [ -n "${INPUT_SSH_KEY_PASSPHRASE:-}" ]; then export DEPLOYFILE_SSH_PASSPHRASE="$INPUT_SSH_KEY_PASSPHRASE"; fi

# dep and what it runs locally do not need the key's text any more: only its file.
unset INPUT_SSH_PRIVATE_KEY INPUT_SSH_KEY_PASSPHRASE

# argv for dep, element by element.
args=("$task")
case "$task" in -*) fail "task \"$task\" starts with a dash: give a task name, e.g. deploy." ;; esac
if [ -n "${INPUT_SELECTOR:-}" ]; then
  read -r -a selectors <<<"$INPUT_SELECTOR"
  for selector in "${selectors[@]}"; do
    case "$selector" in -*) fail "selector \"$selector\" starts with a dash: selectors look like stage=prod or web1." ;; esac
    args+=("$selector")
  done
fi
while IFS= read -r option || [ -n "$option" ]; do
  option="${option%$'\r'}"
  option="${option#"${option%%[![:space:]]*}"}"
  [ -n "$option" ] || continue
  case "$option" in
    -*) fail "options: \"${option%%=*}\" starts with a dash: write one key=value per line, without -o." ;;
    *=*) args+=(-o "$option") ;;
    *) fail "options: \"$option\" is not key=value: write one key=value per line." ;;
  esac
done <<<"${INPUT_OPTIONS:-}"
if [ -n "${INPUT_REVISION:-}" ]; then args+=(--revision "$INPUT_REVISION"); fi
if [ -n "${INPUT_FILE:-}" ]; then args+=(--file "$INPUT_FILE"); fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then args+=(--summary "$GITHUB_STEP_SUMMARY"); fi

cd -- "$workdir" || fail "working-directory \"$workdir\" does not exist."
dep="node_modules/.bin/dep"
[ -x "$dep" ] || fail "$PWD/$dep not found: add deployfile to the devDependencies and run npm ci before this step."

summary_size() { if [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ -f "$GITHUB_STEP_SUMMARY" ]; then wc -c <"$GITHUB_STEP_SUMMARY"; else echo 0; fi; }
before=$(summary_size)

# GITHUB_ACTIONS=true is the GitHub output mode: plain lines, a ::group:: per step, failures as
# ::error:: annotations, command output fenced so it cannot issue workflow commands.
set +e
GITHUB_ACTIONS=true "$dep" "${args[@]}"
code=$?
set -e

# dep failed before any run began (a broken deployfile, an unknown task): the summary says so.
if [ "$code" -ne 0 ] && [ -n "${GITHUB_STEP_SUMMARY:-}" ] && [ "$(summary_size)" -eq "$before" ]; then
  printf '### dep %s: ❌ failed before the run started (exit %s)\n\nThe error is in the log of this step.\n' "$task" "$code" >>"$GITHUB_STEP_SUMMARY"
fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then printf 'exit-code=%s\n' "$code" >>"$GITHUB_OUTPUT"; fi
exit "$code"
