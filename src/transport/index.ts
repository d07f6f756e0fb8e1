export type { Transport, TransportFactory, ExecOptions, ExecResult, PutOptions, GetOptions } from './types.js'
export { LocalTransport, createLocalTransport } from './local/local-transport.js'
export { MemoryTransport, type RecordedOperation, type Responder } from './memory/memory-transport.js'
