// Java HTTP clients for the corpus, one request a second to the corpus server, at most COUNT
// requests. Modes:
//   apache-unclosed   Apache HttpClient 4.x, one client, responses never closed nor consumed
//   apache-correct    Apache HttpClient 4.x, one client, EntityUtils.consume + close (healthy)
//   jdk-per-request   java.net.http.HttpClient, a new client per request, body read
// Prints {"ready": true, "pid": N} before the first request.
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import org.apache.http.client.methods.CloseableHttpResponse;
import org.apache.http.client.methods.HttpGet;
import org.apache.http.impl.client.CloseableHttpClient;
import org.apache.http.impl.client.HttpClients;
import org.apache.http.util.EntityUtils;

public class Clients {
    public static void main(String[] args) throws Exception {
        String mode = args[0];
        String url = args[1];
        int count = Integer.parseInt(args[2]);
        List<Object> kept = new ArrayList<>();
        CloseableHttpClient apache = HttpClients.custom().setMaxConnPerRoute(100000).setMaxConnTotal(100000).build();
        System.out.println("{\"ready\": true, \"pid\": " + ProcessHandle.current().pid() + "}");
        System.out.flush();
        long deadline = System.nanoTime() + (count + 30) * 1_000_000_000L;
        for (int i = 0; i < count && System.nanoTime() < deadline; i++) {
            switch (mode) {
                case "apache-unclosed":
                    kept.add(apache.execute(new HttpGet(url)));
                    break;
                case "apache-correct":
                    try (CloseableHttpResponse r = apache.execute(new HttpGet(url))) {
                        EntityUtils.consume(r.getEntity());
                    }
                    break;
                case "jdk-per-request":
                    java.net.http.HttpClient c = java.net.http.HttpClient.newHttpClient();
                    c.send(java.net.http.HttpRequest.newBuilder(URI.create(url)).build(),
                           java.net.http.HttpResponse.BodyHandlers.ofString());
                    kept.add(c);
                    break;
                default:
                    throw new IllegalArgumentException(mode);
            }
            Thread.sleep(1000);
        }
    }
}
