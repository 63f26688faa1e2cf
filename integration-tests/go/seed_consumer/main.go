// The seed article's consumer ("Beginning with Apache Kafka", section
// "Consumer (Golang)", /work/shared/seed-article.txt), as printed there. The
// article's copy lost a few lines in extraction (the import block, the
// `"group.id"` key, `panic(err)` and closing braces); they are restored here
// and nothing else is changed. kafka_groups.rs builds a copy of this file in
// which only the bootstrap string "localhost" is rewritten to the test
// broker's "localhost:<port>" (the article's broker listens on localhost:9092).
package main

import (
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/kafka"
)

func main() {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": "localhost",
		"group.id":          "notification_service",
		"auto.offset.reset": "earliest",
	})

	if err != nil {
		panic(err)
	}

	c.SubscribeTopics([]string{"users.notification"}, nil)

	for {
		fmt.Println("Waiting for messages...")

		msg, err := c.ReadMessage(-1)
		if err == nil {
			fmt.Println("Topic : ", *msg.TopicPartition.Topic)
			fmt.Println("Partition : ", msg.TopicPartition.Partition)
			fmt.Println("Offset : ", msg.TopicPartition.Offset)
			fmt.Println("Value : ", string(msg.Value))
		} else {
			// The client will automatically try to recover from all errors.
			fmt.Printf("Consumer error: %v (%v)\n", err, msg)
		}
	}

	c.Close()
}
