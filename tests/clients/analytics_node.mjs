// Drives @segment/analytics-node, unchanged, against the collector named by COLLECTOR_URL:
// one call of each kind, then closeAndFlush(). Prints one JSON line per HTTP response
// (status and URL only, never headers: they carry the write key) and per error.
import { Analytics } from '@segment/analytics-node'

const host = process.env.COLLECTOR_URL
const writeKey = process.env.WRITE_KEY
const who = process.env.CLIENT_USER // user id; the email is made from it
if (!host || !writeKey || !who) {
  console.error('COLLECTOR_URL, WRITE_KEY and CLIENT_USER are required')
  process.exit(2)
}

const analytics = new Analytics({ writeKey, host, maxRetries: 2, flushInterval: 200 })
let failed = false
analytics.on('http_response', (r) => console.log(JSON.stringify({ status: r.status, url: r.url })))
analytics.on('error', (err) => {
  failed = true
  console.log(JSON.stringify({ error: err.code, reason: String(err.reason) }))
})

const email = `${who}@example.com`
analytics.identify({ userId: who, traits: { email, plan: 'node-plan' } })
analytics.track({ userId: who, event: 'Order Completed', properties: { total: 42.5, client: 'node' } })
analytics.page({ userId: who, name: 'Shoes', properties: { url: `https://shop.example.com/${who}/shoes` } })
analytics.screen({ userId: who, name: 'Basket', properties: { items: 2 } })
analytics.group({ userId: who, groupId: `${who}-org`, traits: { name: 'Acme' } })
analytics.alias({ userId: who, previousId: `${who}-before` })

await analytics.closeAndFlush({ timeout: 20000 })
process.exit(failed ? 1 : 0)
