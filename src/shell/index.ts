export { quote } from './quote.js'
export { sh, raw, script, Command, Raw, type ShellValue, type CommandSettings } from './command.js'
export { redact, MASK, SecretRegistry } from './redact.js'
export * from './protocol.js'
