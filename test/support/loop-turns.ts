/**
 * Counts turns of the event loop from now until `stop`: a long piece of work that runs off the loop (on a thread)
 * lets it turn meanwhile; one that holds it lets none.
 */
export function loopTurns() {
  let turns = 0;
  let on = true;
  const tick = () => {
    if (!on) return;
    turns++;
    setImmediate(tick);
  };
  setImmediate(tick);
  return {
    get turns() {
      return turns;
    },
    /** Stops counting; the turns so far. */
    stop: () => {
      on = false;
      return turns;
    },
  };
}
