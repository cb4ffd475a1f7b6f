import java.io.File;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

import org.ggp.base.util.gdl.factory.GdlFactory;
import org.ggp.base.util.gdl.grammar.Gdl;
import org.ggp.base.util.statemachine.MachineState;
import org.ggp.base.util.statemachine.Move;
import org.ggp.base.util.statemachine.Role;
import org.ggp.base.util.statemachine.StateMachine;
import org.ggp.base.util.statemachine.exceptions.GoalDefinitionException;
import org.ggp.base.util.statemachine.implementation.prover.ProverStateMachine;
import org.ggp.base.util.symbol.factory.SymbolFactory;
import org.ggp.base.util.symbol.grammar.SymbolList;

/**
 * Random-playout benchmark for ggp-base's ProverStateMachine (AimaProver).
 *
 * Usage: ProverPerf [--warmup S] [--seconds S] [--min-playouts N] [--seed N] [--own-rng] game.kif...
 *
 * Per game: parse KIF with ggp-base's SymbolFactory/GdlFactory (same steps as
 * ggp-base's Game.preprocessRulesheet + Game.getRules), new ProverStateMachine(),
 * initialize(rules), then random playouts as gdl-perf defines them:
 *   s = initial; while (!isTerminal(s)) { s = getNextState(s, randomJointMove(s)); stateChanges++ }
 *   getGoals(s)  (GoalDefinitionException counted as an undefined goal)
 * first for --warmup seconds (not counted), then for --seconds (counted). The
 * playout in progress when a window ends is always finished, so windows overrun; with --min-playouts the
 * timed window also lasts until that many playouts are done (reversi's take seconds each).
 *
 * This file is ours; ggp-base is not part of this repository. Build ggp-base's classes (see README.md here) and
 * compile this against them: javac -cp <ggp-base classes>:<guava 14-16 jar> ProverPerf.java
 *
 * Randomness: by default ggp-base's own StateMachine.getRandomJointMove is used;
 * it draws from ThreadLocalRandom and cannot be seeded, so --seed has no effect
 * then. With --own-rng the harness instead picks each role's move uniformly from
 * getLegalMoves with a java.util.Random seeded by --seed (same prover calls).
 */
public final class ProverPerf {

    private static final class Counters {
        long playouts, stateChanges, undefinedGoals;
        double longestPlayoutS;
    }

    public static void main(String[] args) throws Exception {
        double warmup = 5, seconds = 10;
        long minPlayouts = 1;
        long seed = 0;
        boolean seedGiven = false, ownRng = false;
        List<String> files = new ArrayList<String>();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--warmup")) warmup = Double.parseDouble(args[++i]);
            else if (a.equals("--seconds")) seconds = Double.parseDouble(args[++i]);
            else if (a.equals("--min-playouts")) minPlayouts = Long.parseLong(args[++i]);
            else if (a.equals("--seed")) { seed = Long.parseLong(args[++i]); seedGiven = true; }
            else if (a.equals("--own-rng")) ownRng = true;
            else if (a.equals("-h") || a.equals("--help")) { usage(); return; }
            else if (a.startsWith("--")) { System.err.println("unknown option " + a); usage(); System.exit(2); }
            else files.add(a);
        }
        if (files.isEmpty()) { usage(); System.exit(2); }
        if (seedGiven && !ownRng) {
            System.err.println("note: ggp-base's getRandomJointMove uses ThreadLocalRandom (unseedable); --seed is ignored unless --own-rng is given");
        }

        ThreadMXBean mx = ManagementFactory.getThreadMXBean();
        if (mx.isCurrentThreadCpuTimeSupported() && !mx.isThreadCpuTimeEnabled()) mx.setThreadCpuTimeEnabled(true);

        int gameIndex = 0;
        for (String path : files) {
            String game = new File(path).getName().replaceFirst("\\.kif$", "");
            StringBuilder out = new StringBuilder();
            out.append('{').append(q("game")).append(':').append(q(game));
            out.append(',').append(q("file")).append(':').append(q(path));
            try {
                // Each game gets its own Random derived from the seed, so results do not depend on game order.
                Random rng = new Random(seed * 1000003L + gameIndex);

                String raw = new String(Files.readAllBytes(new File(path).toPath()), StandardCharsets.UTF_8);
                long p0 = System.nanoTime();
                List<Gdl> rules = parseRules(raw);
                double parseS = (System.nanoTime() - p0) / 1e9;

                long i0 = System.nanoTime();
                StateMachine sm = new ProverStateMachine();
                sm.initialize(rules);
                double initS = (System.nanoTime() - i0) / 1e9;

                // Warm-up (not counted).
                Counters warm = new Counters();
                long w0 = System.nanoTime();
                long warmNs = (long) (warmup * 1e9);
                while (warmup > 0 && System.nanoTime() - w0 < warmNs) {
                    playout(sm, ownRng ? rng : null, warm);
                }
                double warmWallS = (System.nanoTime() - w0) / 1e9;

                // Timed window.
                Counters c = new Counters();
                long windowNs = (long) (seconds * 1e9);
                long cpu0 = mx.getCurrentThreadCpuTime();
                long proc0 = processCpuNs();
                long t0 = System.nanoTime();
                do {
                    playout(sm, ownRng ? rng : null, c);
                } while (System.nanoTime() - t0 < windowNs || c.playouts < minPlayouts);
                long t1 = System.nanoTime();
                long cpu1 = mx.getCurrentThreadCpuTime();
                long proc1 = processCpuNs();
                double wallS = (t1 - t0) / 1e9;
                double procS = (proc1 - proc0) / 1e9;
                double cpuS = (cpu1 - cpu0) / 1e9;
                double overrunS = Math.max(0.0, wallS - seconds);

                out.append(',').append(q("playouts")).append(':').append(c.playouts);
                out.append(',').append(q("stateChanges")).append(':').append(c.stateChanges);
                out.append(',').append(q("wallS")).append(':').append(f(wallS));
                out.append(',').append(q("cpuS")).append(':').append(f(cpuS));
                out.append(',').append(q("playoutsPerWallS")).append(':').append(f(c.playouts / wallS));
                out.append(',').append(q("playoutsPerCpuS")).append(':').append(cpuS > 0 ? f(c.playouts / cpuS) : "null");
                // The whole JVM's CPU time (JIT compiler and GC threads too), as Node's process.cpuUsage() counts ours.
                out.append(',').append(q("processCpuS")).append(':').append(f(procS));
                out.append(',').append(q("playoutsPerProcessCpuS")).append(':').append(procS > 0 ? f(c.playouts / procS) : "null");
                out.append(',').append(q("stateChangesPerWallS")).append(':').append(f(c.stateChanges / wallS));
                out.append(',').append(q("meanPlies")).append(':').append(f((double) c.stateChanges / c.playouts));
                out.append(',').append(q("undefinedGoals")).append(':').append(c.undefinedGoals);
                out.append(',').append(q("initS")).append(':').append(f(initS));
                out.append(',').append(q("parseS")).append(':').append(f(parseS));
                out.append(',').append(q("roles")).append(':').append(sm.getRoles().size());
                out.append(',').append(q("windowS")).append(':').append(f(seconds));
                out.append(',').append(q("overrunS")).append(':').append(f(overrunS));
                out.append(',').append(q("longestPlayoutS")).append(':').append(f(c.longestPlayoutS));
                // true when a single playout was longer than the whole timed window.
                out.append(',').append(q("playoutLongerThanWindow")).append(':').append(c.longestPlayoutS > seconds);
                out.append(',').append(q("warmupPlayouts")).append(':').append(warm.playouts);
                out.append(',').append(q("warmupWallS")).append(':').append(f(warmWallS));
                out.append(',').append(q("rng")).append(':').append(q(ownRng
                        ? "java.util.Random seeded (--own-rng, seed " + seed + ")"
                        : "ggp-base StateMachine.getRandomJointMove (ThreadLocalRandom, unseeded)"));
            } catch (Throwable t) {
                out.append(',').append(q("error")).append(':').append(q(t.toString()));
            }
            out.append('}');
            System.out.println(out);
            System.out.flush();
            gameIndex++;
        }
    }

    /** Same steps as ggp-base Game.preprocessRulesheet(raw) followed by Game.getRules(). */
    static List<Gdl> parseRules(String rawRulesheet) throws Exception {
        StringBuilder rulesheetBuilder = new StringBuilder();
        String[] rulesheetLines = rawRulesheet.split("[\n\r]");
        for (int i = 0; i < rulesheetLines.length; i++) {
            String line = rulesheetLines[i];
            int comment = line.indexOf(';');
            int cutoff = (comment == -1) ? line.length() : comment;
            rulesheetBuilder.append(line.substring(0, cutoff));
            rulesheetBuilder.append(" ");
        }
        String processed = "( " + rulesheetBuilder.toString() + " )";

        List<Gdl> rules = new ArrayList<Gdl>();
        SymbolList list = (SymbolList) SymbolFactory.create(processed);
        for (int i = 0; i < list.size(); i++) {
            rules.add(GdlFactory.create(list.get(i)));
        }
        return rules;
    }

    static void playout(StateMachine sm, Random rng, Counters c) throws Exception {
        long p0 = System.nanoTime();
        MachineState s = sm.getInitialState();
        while (!sm.isTerminal(s)) {
            List<Move> joint = (rng == null) ? sm.getRandomJointMove(s) : seededJointMove(sm, s, rng);
            s = sm.getNextState(s, joint);
            c.stateChanges++;
        }
        try {
            sm.getGoals(s);
        } catch (GoalDefinitionException e) {
            c.undefinedGoals++;
        }
        c.playouts++;
        double d = (System.nanoTime() - p0) / 1e9;
        if (d > c.longestPlayoutS) c.longestPlayoutS = d;
    }

    static List<Move> seededJointMove(StateMachine sm, MachineState s, Random rng) throws Exception {
        List<Move> joint = new ArrayList<Move>();
        for (Role role : sm.getRoles()) {
            List<Move> legals = sm.getLegalMoves(s, role);
            joint.add(legals.get(rng.nextInt(legals.size())));
        }
        return joint;
    }

    static long processCpuNs() {
        java.lang.management.OperatingSystemMXBean os = ManagementFactory.getOperatingSystemMXBean();
        if (os instanceof com.sun.management.OperatingSystemMXBean) {
            return ((com.sun.management.OperatingSystemMXBean) os).getProcessCpuTime();
        }
        return 0;
    }

    static String f(double d) {
        if (Double.isNaN(d) || Double.isInfinite(d)) return "null";
        return String.format(Locale.ROOT, "%.6g", d);
    }

    static String q(String s) {
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            switch (ch) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
                    else b.append(ch);
            }
        }
        return b.append('"').toString();
    }

    static void usage() {
        System.err.println("usage: ProverPerf [--warmup S (5)] [--seconds S (10)] [--min-playouts N (1)] [--seed N] [--own-rng] game.kif...");
    }
}
