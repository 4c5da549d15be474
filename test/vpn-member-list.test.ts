// MemberList.join: a first put of our record that reaches no majority (a DHT still settling,
// replicas behind NATs) does not stop the VPN from starting; the registration service retries.
import t from 'tap';
import { Address } from '../src/address/address.js';
import { membersKey } from '../src/vpn/mapping.js';
import { MemberList } from '../src/vpn/members.js';

t.test('a failed first put of the member record is left to the registration service', async (t) => {
  const calls: string[] = [];
  const registrations = {
    register: async (key: Uint8Array) => { calls.push(Buffer.from(key).toString()); throw new Error('no majority of replicas stored the value'); },
    unregister: () => true,
  };
  const dht = { get: async () => [], put: async () => {} };
  const list = new MemberList({ dht, registrations }, membersKey('ns'), { address: Address.fromBigInt(7n), ip: 0x0a000001 }, 1);
  await t.resolves(list.join(), 'join resolves');
  t.same(calls, ['ipop:ns:members'], 'the record was registered (and is retried by the service)');
  t.equal(list.stats.joinRetries, 1, 'counted');
});
