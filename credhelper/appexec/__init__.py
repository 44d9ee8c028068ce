"""Running an app with credentials: `credhelper exec` (plain: `plain`; supervised: `supervisor`,
with `groups`, `renewal` and `guardian`) and the app's environment, shared with `credhelper env`
(`environment`). Kept empty: plain exec imports this package before becoming the command."""
