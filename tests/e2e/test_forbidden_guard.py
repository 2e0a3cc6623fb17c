#!/usr/bin/env python3
"""The forbidden-label guard is the last line of the GDPR boundary.

The platform destination here "forgets" its labeldrop rule (a plausible
config mistake) but keeps forbidden_labels. Platform series that still
carry project_id/service_id/workspace_id must then not be sent at all, and
each one is counted (promrelay_forbidden_label_violations_total and
promrelay_dropped_samples_total with a forbidden-label reason); platform
series without tenant labels still go through, and the customer side is
untouched.
"""

import re
import time

import harness
import starform

ROUNDS = 3


def test_forbidden_guard():
    with harness.Env("forbidden-guard") as env:
        vm = env.start_victoria_metrics()
        prom = env.start_prometheus_receiver()
        config = harness.starform_config(env, prom, vm)
        plat = config["remote_write"][0]
        plat["write_relabel_configs"] = [r for r in plat["write_relabel_configs"]
                                         if r.get("action") != "labeldrop"]
        assert plat["forbidden_labels"] == list(starform.TENANT_LABELS)
        relay = env.start_promrelay(config)

        series = starform.generate(tenants=2)
        t0 = (int(time.time()) - 120) * 1000
        stamps = {}
        for r in range(ROUNDS):
            stamps[r] = t0 + r * 1000
            resp = relay.push(starform.rw_series(series, r, stamps[r]))
            assert resp.status == 204, resp

        clean = [s for s in series if starform.is_platform(s)
                 and not any(k in s for k in starform.TENANT_LABELS)]
        tainted = [s for s in series if starform.is_platform(s)
                   and any(k in s for k in starform.TENANT_LABELS)]
        assert clean and tainted
        want_platform = {k: v for k, v in starform.expected(series, stamps, "platform").items()
                         if not any(name in starform.TENANT_LABELS for name, _ in k)}
        # expected() already strips tenant labels; keep only the clean series.
        clean_keys = {starform.series_key(s) for s in clean}
        want_platform = {k: v for k, v in want_platform.items() if k in clean_keys}
        harness.wait_for_series(prom.export, want_platform, 30, "platform sink")
        harness.wait_for_series(vm.export, starform.expected(series, stamps, "customer"), 30,
                                "customer sink")
        for label in starform.TENANT_LABELS:
            assert prom.query('count({%s!=""})' % label) == [], label

        n = ROUNDS * len(tainted)
        forbidden = re.compile(".*forbidden.*")

        def counted():
            m = relay.metrics()
            return (m.sum("promrelay_forbidden_label_violations_total",
                          destination="platform") == n
                    and m.sum("promrelay_dropped_samples_total", destination="platform",
                              reason=forbidden) == n)

        try:
            harness.wait_for(counted, 15, what="guard counters")
        except harness.E2EError:
            m = relay.metrics()
            raise harness.E2EError("want %d: violations %r, drops %r" % (
                n, m.select("promrelay_forbidden_label_violations_total"),
                m.select("promrelay_dropped_samples_total")))
        m = relay.metrics()
        assert m.sum("promrelay_forbidden_label_violations_total", destination="customer") == 0
        assert m.sum("promrelay_sent_samples_total", destination="platform") == \
            ROUNDS * len(clean)


if __name__ == "__main__":
    harness.main(test_forbidden_guard)
