/*
 * The protocol between deployfile and the shells it runs commands in: how a command is rendered
 * (`renderCommand`), framed and sent (bootstraps, payloads), killed, batched with queued commands,
 * and how scripts answer (markers, exit codes). Every piece is built with `sh` and pinned as an
 * exact string by test/unit/shell-protocol.test.ts.
 */
export { renderCommand } from '../command.js'
export { ScriptExit, type ScriptExitCode } from './exit-codes.js'
export { Markers, parseMarkers, marker, PGID_MARKER, findPgidMarker, QUEUED_FAILED, failedQueuedIndex, withoutQueuedMarker } from './markers.js'
export { PGID_PREAMBLE, SCRIPT_TRAILER, SSH_BOOTSTRAP, sshPayload, LOCAL_BOOTSTRAP, localPayload, killScript } from './remote.js'
export { queuedBatch } from './batch.js'
export { adHocScript, interactiveShellScript } from './wrappers.js'
