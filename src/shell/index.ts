export { quote } from './quote.js'
export { sh, raw, script, Command, Raw, type ShellValue } from './command.js'
export { redact, MASK, SecretRegistry } from './redact.js'
export { wrapScript } from './wrap.js'
