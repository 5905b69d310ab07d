/** Broker account shapes, from the generated OpenAPI types. */
import type { components } from '@/api/schema';

export type BrokerAccount = components['schemas']['BrokerAccount'];
export type AccountList = { items: BrokerAccount[] };
