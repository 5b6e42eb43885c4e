// Starting and stopping `mpc-wallet serve` for the interop tests.
import { spawn } from 'node:child_process'

/**
 * The test suite's settings (scripts/test.sh) every wallet process gets, when set: fixture primes
 * and no multiexponentiation tables, so each DKG takes seconds.
 */
export const testVars = () => Object.fromEntries(
  ['MPC_INSECURE_TEST_PRIMES', 'MPC_MULTIEXP_TABLES'].filter(k => process.env[k]).map(k => [k, process.env[k]]))

/**
 * Starts `bin serve --listen 127.0.0.1:0` with exactly `env` (plus PATH and `testVars()`); resolves to
 * { child, url, out } once it prints `listening: <url>`, rejects if it exits first.
 */
export function startServe (bin, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0'], {
      env: { PATH: process.env.PATH, ...testVars(), ...env },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let out = ''
    let err = ''
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${out}\n${err}`)), 600_000)
    child.stderr.on('data', d => { err += d })
    child.stdout.on('data', d => {
      out += d
      const m = out.match(/^listening: (http:\/\/\S+)$/m)
      if (m) {
        clearTimeout(timer)
        resolve({ child, url: m[1], out })
      }
    })
    child.on('exit', code => {
      clearTimeout(timer)
      reject(new Error(`serve exited with ${code}:\n${out}\n${err}`))
    })
  })
}

/** Runs `bin ...args` with exactly `env` (plus PATH and `testVars()`) to its end; resolves to { code, out, err }. */
export function run (bin, args, env) {
  return new Promise(resolve => {
    const child = spawn(bin, args, { env: { PATH: process.env.PATH, ...testVars(), ...env } })
    let out = ''
    let err = ''
    child.stdout.on('data', d => { out += d })
    child.stderr.on('data', d => { err += d })
    child.on('exit', code => resolve({ code, out, err }))
  })
}

/** Stops a server `startServe` started (SIGTERM) and resolves once it exited. */
export function stop (child) {
  return new Promise(resolve => {
    child.removeAllListeners('exit')
    child.on('exit', () => resolve())
    child.kill('SIGTERM')
  })
}
