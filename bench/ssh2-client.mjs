// The least an ssh2 client does per host: connect, check the host key, authenticate with the key,
// run one command on one session, disconnect; every host at once. Run as its own process by
// bench/client-floor.ts, which reads its CPU and peak RSS as it does dep's.
// argv[2]: JSON [{ host, port, username, privateKey (path), knownHosts (path) }]
import { readFileSync } from 'node:fs'
import { Client } from 'ssh2'

const hosts = JSON.parse(process.argv[2])
const known = (file) => new Set(readFileSync(file, 'utf8').split('\n').map((line) => line.split(' ')[2]))

async function one(spec) {
  const keys = known(spec.knownHosts)
  const client = new Client()
  await new Promise((resolve, reject) => {
    client
      .on('ready', resolve)
      .on('error', reject)
      .connect({
        host: spec.host,
        port: spec.port,
        username: spec.username,
        privateKey: readFileSync(spec.privateKey),
        hostVerifier: (key) => keys.has(key.toString('base64')),
      })
  })
  await new Promise((resolve, reject) =>
    client.exec('true', (error, stream) => {
      if (error) return reject(error)
      stream.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))))
      stream.resume()
      stream.stderr.resume()
    }),
  )
  client.end()
}

await Promise.all(hosts.map(one))
