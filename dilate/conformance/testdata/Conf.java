// Conformance program for the JVM (HotSpot): its threads sleep and wait
// through pthread condition variables (futex with absolute deadlines),
// nanosleep, poll and epoll. Protocol: see package conformance.
import java.net.DatagramPacket;
import java.net.DatagramSocket;
import java.net.InetAddress;
import java.net.SocketTimeoutException;
import java.nio.channels.Selector;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

public class Conf {
    interface Step { void run() throws Exception; }

    static void step(String name, long want, Step s) throws Exception {
        System.out.println("B " + name);
        System.out.flush();
        long t0 = System.nanoTime();
        s.run();
        System.out.println("E " + name + " " + (System.nanoTime() - t0) + " " + want);
        System.out.flush();
    }

    static void udp(long ms) throws Exception {
        try (DatagramSocket s = new DatagramSocket(0, InetAddress.getLoopbackAddress())) {
            s.setSoTimeout((int) ms);
            try {
                s.receive(new DatagramPacket(new byte[16], 16));
                System.out.println("F receive returned data");
            } catch (SocketTimeoutException e) {
                // expected
            }
        }
    }

    public static void main(String[] args) throws Exception {
        final long d = Long.parseLong(args[0]);
        final long dms = d / 1_000_000;
        // Load the classes of every step first: class loading is CPU work,
        // which at k < 1 would show up magnified in virtual time.
        ScheduledExecutorService ex = Executors.newSingleThreadScheduledExecutor();
        ex.schedule(() -> 0, 1, TimeUnit.MILLISECONDS).get();
        udp(1);
        try (Selector sel = Selector.open()) {
            sel.select(1);
        }
        new ArrayBlockingQueue<Integer>(1).poll(1, TimeUnit.MILLISECONDS);
        step("clock-nanotime-millis", d, () -> {
            long m0 = System.nanoTime(), w0 = System.currentTimeMillis();
            Thread.sleep(dms);
            long m1 = System.nanoTime(), w1 = System.currentTimeMillis();
            if (Math.abs((w1 - w0) * 1_000_000 - (m1 - m0)) > d / 10 + 1_000_000)
                System.out.println("L clock-nanotime-millis currentTimeMillis progressed " + (w1 - w0) + " ms, nanoTime " + (m1 - m0) + " ns");
        });
        step("Thread.sleep", d, () -> Thread.sleep(dms));
        final Object lock = new Object();
        step("Object.wait", d, () -> {
            synchronized (lock) {
                long end = System.nanoTime() + d;
                for (long left = d; left > 0; left = end - System.nanoTime())
                    lock.wait(Math.max(1, left / 1_000_000), (int) (left % 1_000_000));
            }
        });
        step("LockSupport.parkNanos", d, () -> {
            long end = System.nanoTime() + d;
            for (long left = d; left > 0; left = end - System.nanoTime())
                LockSupport.parkNanos(left);
        });
        step("BlockingQueue.poll", d, () -> new ArrayBlockingQueue<Integer>(1).poll(d, TimeUnit.NANOSECONDS));
        step("ScheduledExecutor", d, () -> ex.schedule(() -> 0, d, TimeUnit.NANOSECONDS).get());
        ex.shutdown();
        step("DatagramSocket.soTimeout", dms * 1_000_000, () -> udp(dms));
        try (Selector sel = Selector.open()) {
            step("Selector.select-epoll", dms * 1_000_000, () -> sel.select(dms));
        }
    }
}
