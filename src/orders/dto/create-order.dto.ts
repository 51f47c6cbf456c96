import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize, ArrayMinSize, IsArray, IsEmail, IsIn, IsInt, IsOptional, IsString, IsUrl, Length, Matches, Max, MaxLength, Min, ValidateNested,
} from 'class-validator';

export class OrderItemDto {
  @ApiProperty({ example: 'TSHIRT-M', minLength: 1, maxLength: 64 })
  @IsString()
  @Length(1, 64)
  sku: string;

  @ApiProperty({ example: 'T-shirt, size M', minLength: 1, maxLength: 200 })
  @IsString()
  @Length(1, 200)
  name: string;

  /** Minor units (cents). */
  @ApiProperty({ example: 1299, description: 'Price of one unit in minor units (cents)', minimum: 0 })
  @IsInt()
  @Min(0)
  @Max(99_999_999)
  unitAmount: number;

  @ApiProperty({ example: 2, minimum: 1, maximum: 10000 })
  @IsInt()
  @Min(1)
  @Max(10_000)
  quantity: number;
}

/** http(s) with a host; localhost allowed (a shop on a laptop), as Stripe's test mode allows. */
const URL_RULE = { protocols: ['http', 'https'], require_protocol: true, require_tld: false };

export class CheckoutDto {
  @ApiProperty({ example: 'https://shop.example/orders/done?session={CHECKOUT_SESSION_ID}', description: 'Where the customer returns after paying; {CHECKOUT_SESSION_ID} is filled in' })
  @IsUrl(URL_RULE, { message: 'checkout.successUrl must be an http(s) URL' })
  @MaxLength(2048)
  successUrl: string;

  @ApiProperty({ example: 'https://shop.example/cart', description: 'Where the customer goes when leaving the payment page' })
  @IsUrl(URL_RULE, { message: 'checkout.cancelUrl must be an http(s) URL' })
  @MaxLength(2048)
  cancelUrl: string;
}

export class CreateOrderDto {
  /** Lower-case ISO 4217 code, as Stripe writes it. */
  @ApiProperty({ example: 'usd', description: 'Lower-case ISO 4217 currency code' })
  @IsString()
  @Matches(/^[a-z]{3}$/, { message: 'currency must be a lower-case ISO 4217 code such as "usd"' })
  currency: string;

  @ApiProperty({ type: [OrderItemDto], description: 'The server computes the amount from these' })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(100)
  @ValidateNested({ each: true })
  @Type(() => OrderItemDto)
  items: OrderItemDto[];

  @ApiProperty({ example: 'ada@example.com' })
  @IsEmail({}, { message: 'customerEmail must be an email address' })
  @MaxLength(254)
  customerEmail: string;

  @ApiPropertyOptional({
    enum: ['automatic', 'manual'],
    example: 'manual',
    description: 'manual: the payment is only authorized; capture it with POST /orders/:id/capture (default: CAPTURE_METHOD)',
  })
  @IsOptional()
  @IsIn(['automatic', 'manual'], { message: 'captureMethod must be "automatic" or "manual"' })
  captureMethod?: 'automatic' | 'manual';

  @ApiPropertyOptional({ type: CheckoutDto, description: 'Pay on a hosted Checkout Session instead of with a client secret: the answer carries payment.checkoutUrl' })
  @IsOptional()
  @ValidateNested()
  @Type(() => CheckoutDto)
  checkout?: CheckoutDto;

  @ApiPropertyOptional({ example: 'https://shop.example/orders/return', description: 'PaymentIntent flow: the checkout confirms with this return_url, so redirect payment methods may be offered' })
  @IsOptional()
  @IsUrl(URL_RULE, { message: 'returnUrl must be an http(s) URL' })
  @MaxLength(2048)
  returnUrl?: string;
}
