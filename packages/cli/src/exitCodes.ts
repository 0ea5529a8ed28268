/** Exit codes scripts can trust (README, "Exit codes"). */
export const EXIT = {ok: 0, failure: 1, usage: 2, problems: 3, busy: 75} as const;
