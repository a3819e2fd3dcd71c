# otk-mock in a container: `docker build -t otk-mock .` then
# `docker run --rm -p 8080:8080 otk-mock`. The catalogue is compiled into the binary;
# mount your own with -v ./scenarios:/scenarios -e OTK_MOCK_SCENARIOS=/scenarios.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin otk-mock

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 otk
COPY --from=build /src/target/release/otk-mock /usr/local/bin/otk-mock
USER otk
ENV OTK_MOCK_BIND=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["otk-mock"]
CMD ["serve"]
