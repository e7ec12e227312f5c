// Recovery after a reconnect, for rooms of a partydeco party that keeps history.
//
// Give `history.query` to PartySocket as its `query` option and pass every frame through
// `history.receive(data)`: it returns what the room broadcast (the same text the app would
// get without history), or null for partydeco's own position frames. `onResync(reason)` is
// called when the room cannot replay what was missed: load the state afresh then.
export function roomHistory(query = () => ({}), onResync = () => {}) {
  let epoch = null;
  let offset = 0;
  return {
    query: async () => ({
      ...(await query()),
      ...(epoch === null ? {} : { since: String(offset), epoch }),
    }),
    receive(data) {
      if (typeof data !== "string" || !data.startsWith('{"type":"partydeco.')) return data;
      const frame = JSON.parse(data);
      if (frame.type === "partydeco.message") {
        offset = frame.offset;
        return typeof frame.data === "string" ? frame.data : JSON.stringify(frame.data);
      }
      if (frame.type === "partydeco.position" || frame.type === "partydeco.resync") {
        const lost = frame.type === "partydeco.resync" || (epoch !== null && frame.epoch !== epoch);
        epoch = frame.epoch;
        offset = frame.offset;
        if (lost) onResync(frame.reason ?? "history_lost");
        return null;
      }
      return data;
    },
  };
}
