"""Taps on the run's RabbitMQ exchanges: what was published, read back in order."""

import uuid

from kombu import Connection, Queue

from tradingapp.messaging import Topology


class Tap:
    """An exclusive queue bound to every routing key of one exchange (`broker_events`, `market_ticks`),
    read with basic_get. Publisher confirms mean a message is on it by the time publish() returns."""

    def __init__(self, app, exchange: str):
        self.connection = Connection(app.config["AMQP_URL"], connect_timeout=5)
        topology = Topology(app.config["NAMESPACE"])
        bound = getattr(topology, exchange)
        bound(self.connection.default_channel).declare()
        name = f"{topology.names[exchange]}.tap-{uuid.uuid4().hex[:8]}"
        queue = Queue(name, bound, routing_key="#", exclusive=True, auto_delete=True)
        self.queue = self.connection.SimpleQueue(queue, accept=["json"])

    def received(self) -> list[tuple[str, dict]]:
        """Every message published since the last call, in order: (routing key, body)."""
        messages = []
        while True:
            try:
                message = self.queue.get_nowait()
            except self.queue.Empty:
                return messages
            messages.append((message.delivery_info["routing_key"], message.payload))
            message.ack()

    def drain(self) -> list[dict]:
        """The bodies of every message published since the last call, in order."""
        return [body for _key, body in self.received()]

    def close(self) -> None:
        self.queue.close()
        self.connection.release()
