/**
 * `layerClient` against a cluster (issue 14): the Ledger conformance suite, run through one
 * client session against three `scarab start` processes on this host. The client sends to the
 * primary of the view (replica 0) as the official client does; every answer has been committed
 * on a replication quorum.
 */
import { Effect, Layer } from "effect"
import { afterAll, beforeAll } from "vitest"
import { makeClientSession } from "../../src/client/layer_client.ts"
import { Ledger, makeLedger } from "../../src/index.ts"
import { type ClusterFiles, type RunningCluster, startCluster, temporaryClusterFiles } from "../integration/replica_process.ts"
import { conformance } from "./conformance.ts"
import { namespaced } from "./namespaced.ts"

let files: ClusterFiles | undefined
let cluster: RunningCluster | undefined
let namespaces = 0
beforeAll(async () => {
  files = temporaryClusterFiles(3)
  cluster = await startCluster(files)
})
afterAll(async () => {
  await cluster?.kill()
  files?.remove()
})

conformance("layerClient (TCP, a cluster of three replica processes)", {
  layer: () => Layer.effect(Ledger, Effect.map(makeClientSession({ cluster: 0n, addresses: cluster!.ports.map(String) }),
    (session) => Ledger.of(makeLedger(namespaced(session.call, namespaces++))))).pipe(Layer.orDie),
  advanceTime: (ms) => Effect.sleep(ms),
  liveClock: true
})
