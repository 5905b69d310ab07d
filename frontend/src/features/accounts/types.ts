/** The broker-account list's answer (GET /broker-accounts); BrokerAccount is in `@/api/types`. */
import type { BrokerAccount } from '@/api/types';

export type AccountList = { items: BrokerAccount[] };
